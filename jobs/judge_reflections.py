"""Measure a judge's reflections on a training run's held-out images, and set how it reflects.

    python jobs/judge_reflections.py --judge cotgen/assets/judge --data runs/scenes/data --rule-reasons on

PARM++'s reflections (greedy `VLMJudge.explain` asked the reflection question) on `--n` held-out images
the evaluator calls wrong and as many it calls correct, spread over the tags, as the trainer's card
measures them (`cotgen.train.judge.evaluation.evaluate_reflections`). With `--rule-reasons on` (or
`off`) the judge folder is first set to reflect by rule (`cotgen.judge.rule_reasons`) or as it writes:
its config.json's `cotgen_reading` changes, its weights do not. The figures replace the "Held-out
reflections" section of the folder's model card (README.md) where it has one, and are printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import torch

from cotgen.errors import InputError
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.reading import set_reading_mode
from cotgen.judge.vlm import load_judge
from cotgen.recipe import run
from cotgen.train.judge.card import reflections_section
from cotgen.train.judge.evaluation import evaluate_reflections
from cotgen.train.judge.examples import ExampleSet

SECTION = re.compile(r"(## Held-out reflections\n)(.*?)(?=\n## )", re.DOTALL)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="judge_reflections", description=__doc__.split("\n\n")[0])
    parser.add_argument("--judge", type=Path, required=True, help="a judge folder (save_pretrained), e.g. cotgen/assets/judge")
    parser.add_argument("--data", type=Path, required=True, help="a jobs/train_judge.py data folder with a finished heldout set")
    parser.add_argument("--rule-reasons", choices=("on", "off"), help="set the judge to reflect by rule, or as it writes, first")
    parser.add_argument("--n", type=int, default=100, help="wrong and correct held-out images each (default 100, the card's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.n < 1:
        raise InputError(f"--n: must be at least 1, got {args.n}")
    heldout = args.data / "heldout"
    if not (heldout / "done.json").is_file():
        raise InputError(f"{heldout}: no finished held-out set (jobs/train_judge.py builds one under <out>/data)")
    torch.set_num_threads(args.threads)
    judge = load_judge(args.judge)
    if args.rule_reasons:
        if judge.reading is None:
            raise InputError(f"{args.judge}: answers directly; reflecting by rule needs a judge that reads first")
        judge.reading = dataclasses.replace(judge.reading, rule_reasons=args.rule_reasons == "on")
        set_reading_mode(judge.model, judge.reading)
        judge.model.config.save_pretrained(args.judge)  # config.json alone: the weights stay byte for byte
    reflections = evaluate_reflections(judge, ExampleSet.load(heldout), args.n, 64, JudgePrompts())
    section = reflections_section(reflections, judge.reading is not None and judge.reading.rule_reasons)
    print(section)
    card = args.judge / "README.md"
    if card.is_file():
        text, found = SECTION.subn(lambda m: m.group(1) + section + "\n", card.read_text(), count=1)
        if not found:
            raise InputError(f"{card}: has no '## Held-out reflections' section followed by another section")
        card.write_text(text)
        print(f"rewrote the held-out reflections of {card}")
    return 0


if __name__ == "__main__":
    run(main, "judge_reflections")
