"""How much the exact evaluator can be trusted, on clean and degraded shapes-world images.

    python bench/evaluator_agreement.py --scenes 5000 --broken 1000

Prints, per condition, the verdict agreement with ground truth (GenEval's rules applied to the
scene's own objects) and the object-level agreement; then, per breakage (an object missing, two
merged, one recoloured), how often a truly wrong image is judged correct.
"""

from __future__ import annotations

import argparse
import time

from cotgen.evaluate.agreement import measure_agreement, measure_false_correct
from cotgen.machine import describe_machine
from cotgen.world.degrade import DEGRADATIONS
from cotgen.world.perturb import BREAKAGES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=5000, help="random scenes per condition")
    parser.add_argument("--broken", type=int, default=1000, help="broken scenes per breakage and condition")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {describe_machine()}")

    print(f"\nverdict agreement on {args.scenes} random scenes (positives: scenes that satisfy their record)")
    print(f"{'condition':<12}{'verdicts':>12}{'objects':>12}{'positives':>11}{'seconds':>9}")
    for condition in (None, *DEGRADATIONS):
        start = time.perf_counter()
        stats = measure_agreement(args.scenes, args.seed, condition)
        print(
            f"{condition or 'clean':<12}{stats.verdict_rate:>12.4f}{stats.object_rate:>12.4f}"
            f"{stats.positives:>11}{time.perf_counter() - start:>9.1f}"
        )

    print(f"\nfalse 'correct' verdicts on {args.broken} broken scenes per breakage")
    print(f"{'breakage':<12}{'clean':>16}{'degraded (all)':>18}")
    for kind in BREAKAGES:
        cells = []
        for condition in (None, "all"):
            stats = measure_false_correct(args.broken, kind, args.seed, condition)
            cells.append(f"{stats.false_correct}/{stats.scenes} ({stats.rate:.2%})")
        print(f"{kind:<12}{cells[0]:>16}{cells[1]:>18}")


if __name__ == "__main__":
    main()
