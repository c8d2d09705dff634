"""How well the judge ranks one prompt's paths early: within-prompt AUC at checkpoint steps.

    python bench/early_ranking.py runs/sweep_tuning_count --parm runs/sweep_tuning_count_c0

PARM with a cap (`keep`) keeps a prompt's most hopeful paths, so what counts is not whether potential
tells passing from failing paths across prompts (there it mostly reads the prompt's difficulty) but
whether it orders the paths of one prompt. For every prompt of an orm pool with both passing and
failing paths (the exact evaluator's verdict on each finished image), this prints the mean over prompts
of the AUC of: potential as a parm pool asked it at each path's first clear step (`--parm`: a sweep with
the same candidates and judge, e.g. clarity 0 so that it is step 1 for every path), and the outcome
question asked of each path's preview after each checkpoint step before the last (the preview rebuilt
from the path's stored tokens, as the verifier decodes it). 0.5: no better than drawing paths in order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from cotgen.errors import InputError
from cotgen.generate.engine import StepwiseGenerator, checkpoint_rows
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import load_judge
from cotgen.models.janus import load_generator
from cotgen.report.sweep import largest_pool
from cotgen.sweep.store import check_same_candidates, load_rows, read_identity


def within_auc(scores: np.ndarray, passed: np.ndarray) -> float | None:
    """P(a passing path outscores a failing one of the same prompt), ties half; None if one side is empty."""
    pos, neg = scores[passed], scores[~passed]
    if not len(pos) or not len(neg):
        return None
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="a sweep folder with an orm pool (every path decoded and evaluated)")
    parser.add_argument("--parm", type=Path, help="a sweep folder with a parm pool of the same candidates and judge")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    orm = largest_pool(load_rows(args.sweep).to_pandas(), "orm")
    parm = None
    if args.parm is not None:
        check_same_candidates(args.sweep, args.parm, also=("judge_weights",))
        parm = largest_pool(load_rows(args.parm).to_pandas(), "parm")
    config = read_identity(args.sweep)
    engine = StepwiseGenerator(load_generator(config["generator"])[0])
    judge = load_judge(config["judge"])
    steps = checkpoint_rows(engine.grid, config["sampling"]["steps"])[:-1]
    aucs: dict[str, list[float]] = {}
    for index, paths in orm.groupby("prompt_index"):
        passed = paths.correct.to_numpy(bool)
        scores = {}
        if parm is not None:
            scores["potential at the first clear step"] = parm[parm.prompt_index == index].potential.to_numpy(float)
        tokens = torch.tensor(np.stack(paths.tokens.to_numpy()).astype(np.int64))
        question = JudgePrompts().orm.format(prompt=paths.prompt.iloc[0])
        for step, rows in enumerate(steps, 1):
            previews = engine.previews(tokens[:, : rows * engine.grid])
            scores[f"outcome question on the step-{step} preview"] = judge.p_yes(previews, [question] * len(previews), finished=[False] * len(previews)).numpy()
        for name, values in scores.items():
            if (auc := within_auc(values, passed)) is not None:
                aucs.setdefault(name, []).append(auc)
    print(f"{args.sweep}: {orm.prompt_index.nunique()} prompts, N = {int(orm.n.max())}")
    for name, values in aucs.items():
        print(f"{name:<45} within-prompt AUC {np.mean(values):.3f} over {len(values)} prompts with both verdicts")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InputError as err:
        sys.exit(f"error: {err}")
