"""Held-out accuracy of a generator under several sampling settings, to choose its defaults.

    python bench/sampling_sweep.py [--model embedded] [--per-tag 8] [--split train] [--grid runs/sweep.png]
        [--settings 3:1.0:0 5:1.0:0 3:0.7:0 ...]   (guidance:temperature:top_k)

Choose defaults on the training split (`--split train`, the default): scoring settings on the held-out
split and then reporting that split would tune on the test set.

Prints one column per setting (exact evaluator, one image per record) and, with --grid, saves the
first setting's images for a look.
"""

from __future__ import annotations

import argparse
import time

import torch
from PIL import Image

from cotgen.evaluate.exact import evaluate_image
from cotgen.evaluate.summary import format_table, summarize
from cotgen.generate import Sampling, StepwiseGenerator
from cotgen.generate.pipeline import generate_images
from cotgen.machine import describe_machine
from cotgen.models.janus import load_generator
from cotgen.prompts import TAGS
from cotgen.world.records import evaluation_records, first_per_tag, sample_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--per-tag", type=int, default=8)
    parser.add_argument("--settings", nargs="+", default=["3:1.0:0", "5:1.0:0", "3:0.7:0", "3:1.0:20"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=["train", "eval"], default="train")
    parser.add_argument("--grid", help="save the first setting's images here (PNG)")
    args = parser.parse_args()
    model, tokenizer = load_generator(args.model)
    if args.split == "eval":
        records = first_per_tag(evaluation_records(), args.per_tag)
    else:
        records = [r for tag in TAGS for r in sample_records(tag, args.per_tag, "train", args.seed)]
    print(f"machine: {describe_machine()}; {len(records)} {args.split}-split records, one image each")
    columns, first_images = {}, None
    for setting in args.settings:
        guidance, temperature, top_k = setting.split(":")
        engine = StepwiseGenerator(model, Sampling(float(guidance), float(temperature), int(top_k)))
        start = time.perf_counter()
        with torch.no_grad():
            images = [image for _, _, image in generate_images(engine, tokenizer, records, 1, args.seed)]
        verdicts = [(r.tag, evaluate_image(im, r).correct) for r, im in zip(records, images)]
        columns[f"g{guidance} t{temperature} k{top_k}"] = summarize(verdicts)
        print(f"{setting}: {time.perf_counter() - start:.1f} s", flush=True)
        first_images = first_images or images
    print(format_table(columns))
    if args.grid:
        per_row = args.per_tag
        grid = Image.new("RGB", (per_row * 66, (len(first_images) // per_row) * 66), "gray")
        for i, image in enumerate(first_images):
            grid.paste(image, ((i % per_row) * 66, (i // per_row) * 66))
        grid.resize((grid.width * 2, grid.height * 2), Image.NEAREST).save(args.grid)
        print(f"images of the first setting, one row per tag: {args.grid}")


if __name__ == "__main__":
    main()
