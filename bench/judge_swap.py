"""Two judges verifying the same candidates: two sweep folders made with the same generator, prompts,
seed and settings but different judges, compared strategy by strategy, paired over prompts.

    python bench/judge_swap.py runs/sweep_table1_judge1 runs/sweep_table1
    # two strategies of one sweep, paired on the same prompts (second minus first)
    python bench/judge_swap.py runs/sweep_table1 --pair parm@20 parm++@20
    # the same judge with other strategy settings (PARM's cap, say) on the same candidates
    python bench/judge_swap.py runs/sweep_table1 runs/sweep_table1_keep8 --settings

With the generator and the path keys the same, every candidate image is the same in both folders
(PARM's pruning aside, which follows its judge), so a difference is the judge's pick alone. Each
strategy@N (N > 1) found in both is reported as GenEval overall in each folder and the difference (second
minus first) with its paired 95 % bootstrap interval over prompts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cotgen.errors import InputError
from cotgen.report.sweep import Point, paired, sweep_points
from cotgen.sweep.store import check_same_candidates, load_rows, read_identity


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="sweep folder verified by the first judge")
    parser.add_argument("second", type=Path, nargs="?", help="sweep folder verified by the second judge")
    parser.add_argument("--pair", nargs=2, metavar=("FIRST", "SECOND"), help="instead: two strategy@N of the first folder")
    parser.add_argument("--settings", action="store_true", help="the folders share their judge and differ in strategy settings (verify) instead")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.pair:
        points = {p.name: p for p in sweep_points(load_rows(args.first).to_pandas(), 0)}
        missing = [name for name in args.pair if name not in points]
        if missing:
            raise InputError(f"{args.first}: no {', '.join(missing)} (it has {', '.join(points)})")
        print_pairs([(" − ".join(reversed(args.pair)), points[args.pair[0]], points[args.pair[1]])], args.resamples)
        return 0
    if args.second is None:
        parser.error("give two sweep folders, or one and --pair")
    # PARM prunes by its settings: the same settings, or (--settings) the same judge
    check_same_candidates(args.first, args.second, also=("judge_weights",) if args.settings else ("verify",))
    points = [{p.name: p for p in sweep_points(load_rows(f).to_pandas(), 0)} for f in (args.first, args.second)]
    sweeps = [read_identity(f) for f in (args.first, args.second)]
    if args.settings:
        first, second = (s["verify"] for s in sweeps)
        print("settings: " + ", ".join(f"{k} {first[k]} → {second[k]}" for k in first if first[k] != second[k]))
    else:
        print(f"judge weights: first {sweeps[0]['judge_weights']}, second {sweeps[1]['judge_weights']}")
    # the baseline, and any strategy at N = 1, is path 0 whatever the judge
    names = [name for name, p in points[0].items() if name in points[1] and p.strategy != "baseline" and p.n > 1]
    print_pairs([(name, points[0][name], points[1][name]) for name in names], args.resamples)
    return 0


def print_pairs(pairs: list[tuple[str, Point, Point]], resamples: int) -> None:
    """A row per (label, first, second): both points' GenEval overall and second minus first, paired."""
    print(f"{'':<22}{'prompts':>8}{'first':>8}{'second':>8}{'difference':>12}  paired 95% CI")
    for label, first, second in pairs:
        n, difference, (low, high) = paired(second.verdicts, first.verdicts, resamples)
        print(f"{label:<22}{n:>8}{first.summary.overall:>8.3f}{second.summary.overall:>8.3f}{difference:>+12.3f}  [{low:+.3f}, {high:+.3f}]")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
