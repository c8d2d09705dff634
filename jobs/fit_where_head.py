"""Fit a judge's where head on its frozen visual tokens and save it beside its weights.

    python jobs/fit_where_head.py --judge cotgen/assets/judge --data runs/scenes/data
    python jobs/judge_card.py --judge cotgen/assets/judge --data runs/scenes/data --rule-where on

The head (`cotgen.judge.where`) reads what is centred in each visual token's cell; with the reading
mode's `rule_where` (set by `jobs/judge_card.py --rule-where on`) a position question's relation in
the judge's reading of a finished image is where the head finds the two classes. It is fitted on the
first `--generated` images of the data folder's `generated` set (the generator's images of
training-split records) and the first `--renders` of its `renders` set, the targets the exact
evaluator's reading of each image; the judge's own weights are not touched. The same judge, data,
seed and thread count give the same head (the same tensors; safetensors writes its metadata
in no fixed order, so compare tensors, not file hashes).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from cotgen.errors import InputError
from cotgen.judge.vlm import load_judge
from cotgen.recipe import run
from cotgen.train.judge.examples import finished_set
from cotgen.train.judge.head_fitting import FITTING_IMAGES
from cotgen.train.judge.where_head import fit_where_head, fitting_images


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fit_where_head", description=__doc__.split("\n\n")[0])
    parser.add_argument("--judge", type=Path, required=True, help="a judge folder (save_pretrained); the head is written into it")
    parser.add_argument("--data", type=Path, required=True, help="a jobs/train_judge.py data folder with finished generated and renders sets")
    parser.add_argument("--generated", type=int, default=FITTING_IMAGES, help=f"the generator's images to fit on (default {FITTING_IMAGES})")
    parser.add_argument("--renders", type=int, default=FITTING_IMAGES, help=f"renders to fit on (default {FITTING_IMAGES})")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    for name in ("generated", "renders"):
        if getattr(args, name) < 0:
            raise InputError(f"--{name}: must not be negative, got {getattr(args, name)}")
    for name in ("steps", "threads"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name}: must not be below 1, got {getattr(args, name)}")
    if args.generated + args.renders == 0:
        raise InputError("--generated and --renders: fit on at least one image")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    generated, renders = finished_set(args.data / "generated", args.generated), finished_set(args.data / "renders", args.renders)
    images = fitting_images(generated, renders, args.generated, args.renders)
    judge = load_judge(args.judge)
    print(f"fitting on {len(images)} images of {args.data}")
    where, loss = fit_where_head(judge, images, steps=args.steps, seed=args.seed)
    where.save(args.judge)
    print(f"wrote {args.judge}/where_head.safetensors (last loss {loss:.4f}) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    run(main, "fit_where_head")
