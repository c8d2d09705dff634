"""What a DPO run's pairs are and how its verified policies compare with each other, from its folder.

    python bench/dpo_pairs.py RUN_DIR [--n 8]

For each round: the pairs, the prompts they come from, and how the pairs' labels agree with the
exact evaluator's verdicts (kept in the round's sweep rows): right (chosen correct, rejected wrong),
reversed, or a tie for the evaluator. Then, from the verifier sweeps of `bench/dpo_results.py`
(RUN_DIR/results/round-R), each strategy on the last round's policy against the same strategy on the
starting policy, paired over the same records (95 % bootstrap interval).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from cotgen.evaluate.bootstrap import paired_difference_ci
from cotgen.evaluate.summary import summarize
from cotgen.report.sweep import sweep_points
from cotgen.sweep.store import load_rows


def pair_agreement(round_dir: Path) -> str:
    pairs = pq.read_table(round_dir / "pairs.parquet", columns=["prompt_index", "chosen_sample", "rejected_sample"]).to_pylist()
    rows = load_rows(round_dir / "samples").to_pylist()
    correct = {(r["prompt_index"], r["sample"]): bool(r["correct"]) for r in rows if r["correct"] is not None}
    chosen = np.array([correct[(p["prompt_index"], p["chosen_sample"])] for p in pairs])
    rejected = np.array([correct[(p["prompt_index"], p["rejected_sample"])] for p in pairs])
    prompts = len({p["prompt_index"] for p in pairs})
    return (f"{round_dir.name}: {len(pairs)} pairs from {prompts} prompts; by the exact evaluator {np.mean(chosen & ~rejected):.1%} "
            f"right, {np.mean(~chosen & rejected):.1%} reversed, {np.mean(chosen == rejected):.1%} ties")  # fmt: skip


def verdicts(sweep: Path, n: int) -> dict:
    points = sweep_points(load_rows(sweep).to_pandas(), resamples=0)
    return {p.name: p.verdicts.sort_values("prompt_index") for p in points if p.n == (1 if p.strategy == "baseline" else n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a DPO run folder (jobs/train_dpo.py's out)")
    parser.add_argument("--n", type=int, default=8, help="the verifiers' N in the results sweeps")
    args = parser.parse_args()
    rounds = sorted((d for d in args.run.glob("round-*") if (d / "pairs.parquet").is_file()), key=lambda d: int(d.name[6:]))
    for folder in rounds:
        print(pair_agreement(folder))
    results = sorted(args.run.glob("results/round-*"), key=lambda d: int(d.name[6:]))
    if len(results) < 2:
        return
    first, last = verdicts(results[0], args.n), verdicts(results[-1], args.n)
    for name in sorted(first.keys() & last.keys()):
        a, b = first[name], last[name]
        tags = a.tag.to_numpy()
        diff = summarize(zip(tags, b.correct)).overall - summarize(zip(tags, a.correct)).overall
        lo, hi = paired_difference_ci(tags, b.correct.to_numpy(bool), a.correct.to_numpy(bool), 1000)
        print(f"{name}: {results[-1].name} − {results[0].name} on the same {len(a)} records: {diff:+.3f} [{lo:+.3f}, {hi:+.3f}]")


if __name__ == "__main__":
    main()
