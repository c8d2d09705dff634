"""Sweep units one at a time against several in one batch (`run_units`, `cluster.units_per_call`).

    python bench/batched_units.py [--prompts 16] [--n 8] [--per-call 8] [--repeats 2] [--threads 2]

The same ORM@N units (training-split prompts, the embedded generator and judge) run in this process,
alternately unit by unit (`run_unit`) and `--per-call` units per call (`run_units`: every prompt's
paths decoded in one batch, the judge asked about all their images at once); both make the same rows
(a test checks it). Prints images per second of each and their ratio, median over the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cotgen.generate import load_engine, prompt_ids
from cotgen.generate.sampling import Sampling
from cotgen.judge import load_judge
from cotgen.machine import describe_machine
from cotgen.prompts import TAGS
from cotgen.sweep.plan import Run, Unit
from cotgen.sweep.work import run_unit, run_units
from cotgen.verify.config import VerifyConfig
from cotgen.world.records import sample_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--per-call", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    engine, tokenizer = load_engine("embedded", Sampling())
    judge = load_judge("embedded")
    records = [r for tag in TAGS for r in sample_records(tag, args.prompts, "train", 0)][: args.prompts]
    config, run = VerifyConfig(strategy="orm", n=args.n), Run("orm", args.n, pool=True)
    units = [Unit(run, i) for i in range(len(records))]

    def tokenize(text: str) -> list[int]:
        return prompt_ids(tokenizer, text)

    def alone() -> None:
        for unit, record in zip(units, records):
            run_unit(engine, judge, tokenize, config, unit, record, 0, [args.n])

    def batched() -> None:
        for start in range(0, len(units), args.per_call):
            chunk = slice(start, start + args.per_call)
            run_units(engine, judge, tokenize, config, units[chunk], records[chunk], 0, [args.n], [False] * len(units[chunk]))

    rates: dict[str, list[float]] = {"one unit per call": [], f"{args.per_call} units per call": []}
    for _ in range(args.repeats):
        for name, work in zip(rates, (alone, batched)):
            start = time.perf_counter()
            work()
            rates[name].append(len(units) * args.n / (time.perf_counter() - start))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    print(f"{len(units)} ORM@{args.n} units, {args.threads} torch threads, median of {args.repeats}; {describe_machine()}")
    for name, rate in medians.items():
        print(f"  {name:<20} {rate:6.2f} images/s")
    first, second = medians.values()
    print(f"  ratio {second / first:.2f}×")


if __name__ == "__main__":
    main()
