"""Re-measure a judge on a training run's held-out sets, and set how it reflects and answers.

    python jobs/judge_card.py --judge cotgen/assets/judge --data runs/scenes/data --rule-reasons on --rule-verdict on

The judge's held-out accuracy (every task, as the trainer's final evaluation measures it,
`cotgen.train.judge.evaluation.evaluate`) and its reflections on `--n` held-out images the evaluator
calls wrong and as many it calls correct (`evaluate_reflections`). `--rule-reasons` and
`--rule-verdict` (`on` or `off`) first set the judge folder to reflect, or to answer after its
reading, by the evaluator's rules on the facts it read (`cotgen.judge.rule_reasons`) or as it learnt:
its config.json's `cotgen_reading` changes, its weights do not. The figures replace the "Held-out
accuracy" and "Held-out reflections" sections of the folder's model card (README.md) where it has
one; the card's other sections (what it was trained on, how) stay as its run wrote them.
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
from cotgen.train.judge.card import heldout_accuracy_section, reflections_section, summary_table
from cotgen.train.judge.evaluation import evaluate, evaluate_reflections
from cotgen.train.judge.examples import ExampleSet, finished_settings

FLAGS = {
    "rule_reasons": "reflect",
    "rule_verdict": "answer after its reading",
    "rule_where": "state a position's relation where its where head finds the classes",
    "rule_count": "state the counts a prompt asks for as its count head finds them",
}


def replace_section(text: str, title: str, body: str) -> str:
    """The card with the body of its `## title` section (up to the next `## `) replaced."""
    section = re.compile(rf"(## {re.escape(title)}\n)(.*?)(?=\n## )", re.DOTALL)
    text, found = section.subn(lambda m: m.group(1) + body + "\n", text, count=1)
    if not found:
        raise InputError(f"model card: has no '## {title}' section followed by another section")
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="judge_card", description=__doc__.split("\n\n")[0])
    parser.add_argument("--judge", type=Path, required=True, help="a judge folder (save_pretrained), e.g. cotgen/assets/judge")
    parser.add_argument("--data", type=Path, required=True, help="a jobs/train_judge.py data folder with finished heldout and heldout_prefixes sets")
    for flag, what in FLAGS.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", choices=("on", "off"), help=f"first set the judge to {what} by rule, or not")
    parser.add_argument("--n", type=int, default=100, help="wrong and correct held-out images each for the reflections (default 100, the card's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.n < 1:
        raise InputError(f"--n: must be at least 1, got {args.n}")
    images, prefixes = finished_settings(args.data / "heldout"), finished_settings(args.data / "heldout_prefixes")
    torch.set_num_threads(args.threads)
    judge = load_judge(args.judge)
    settings = {flag: getattr(args, flag) == "on" for flag in FLAGS if getattr(args, flag) is not None}
    if settings:
        if judge.reading is None:
            raise InputError(f"{args.judge}: answers directly; the rules work on a reading, which it does not write")
        judge.reading = dataclasses.replace(judge.reading, **settings)
        judge.check_heads()
        set_reading_mode(judge.model, judge.reading)
        judge.model.config.save_pretrained(args.judge)  # config.json alone: the weights stay byte for byte
    heldout, heldout_prefixes = ExampleSet.load(args.data / "heldout"), ExampleSet.load(args.data / "heldout_prefixes")
    result = evaluate(judge, heldout, heldout_prefixes, 64)
    reflections = evaluate_reflections(judge, heldout, args.n, 64, JudgePrompts())
    accuracy = heldout_accuracy_section(result, len(heldout), images["samples"], images["seed"], prefixes["records"])
    reflected = reflections_section(reflections, judge.reading is not None and judge.reading.rule_reasons)
    print(summary_table(result))
    print(reflected)
    card = args.judge / "README.md"
    if card.is_file():
        text = replace_section(card.read_text(), "Held-out accuracy", accuracy)
        card.write_text(replace_section(text, "Held-out reflections", reflected))
        print(f"rewrote the held-out sections of {card}")
    return 0


if __name__ == "__main__":
    run(main, "judge_card")
