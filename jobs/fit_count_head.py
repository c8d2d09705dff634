"""Fit a judge's count head on its frozen visual tokens and save it beside its weights.

    python jobs/fit_count_head.py --judge cotgen/assets/judge --data runs/scenes/data
    python jobs/judge_card.py --judge cotgen/assets/judge --data runs/scenes/data --rule-count on

The head (`cotgen.judge.count_head`) reads each class's count off the visual tokens; with the reading
mode's `rule_count` (set by `jobs/judge_card.py --rule-count on`) the counts in the judge's reading of
a finished image are the head's. It is fitted on the first `--images` images each of the data
folder's `generated` set (the generator's images of training-split records), its `renders` and its
`census_scenes` (renders of prompt-free count scenes), the targets the exact evaluator's counts; the
judge's own weights are not touched. The same judge, data, seed and thread count give the same head
(the same tensors; compare tensors, not file hashes).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from cotgen.errors import InputError
from cotgen.judge.count_head import HEAD_FILE
from cotgen.judge.vlm import load_judge
from cotgen.recipe import run
from cotgen.train.judge.count_fit import count_fitting_images, fit_count_head
from cotgen.train.judge.examples import finished_set
from cotgen.train.judge.head_fitting import FITTING_IMAGES

SETS = ("generated", "renders", "census_scenes")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fit_count_head", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--judge", type=Path, required=True, help="a judge folder (save_pretrained); the head is written into it"
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help=f"a jobs/train_judge.py data folder with finished {', '.join(SETS)} sets",
    )
    parser.add_argument(
        "--images", type=int, default=FITTING_IMAGES, help=f"images of each set to fit on (default {FITTING_IMAGES})"
    )
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    for name in ("images", "steps", "threads"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name}: must not be below 1, got {getattr(args, name)}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    images = count_fitting_images(*(finished_set(args.data / name, args.images) for name in SETS), args.images)
    judge = load_judge(args.judge)
    print(f"fitting on {len(images)} images of {args.data}")
    head, loss = fit_count_head(judge, images, steps=args.steps, seed=args.seed)
    head.save(args.judge)
    print(f"wrote {args.judge}/{HEAD_FILE} (last loss {loss:.4f}) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    run(main, "fit_count_head")
