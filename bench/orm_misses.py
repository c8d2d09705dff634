"""Where best-of-N misses: the prompts whose ORM pick is wrong although a correct image was among its N
candidates, and by how much the wrong pick outscored the best correct one.

    python bench/orm_misses.py runs/sweep_tuning runs/sweep_tuning_hedged [--n 8 20]

For each sweep folder (its orm pool) and N: the misses per tag, and the judge's margin of each miss,
P(yes) of the pick minus that of the best correct candidate. A judge whose scores saturate misses by
margins of 1e-4 (every image it reads as matching gets about the same P(yes)), and more candidates
then bring more wrong ones to the top.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cotgen.errors import InputError
from cotgen.prompts import TAGS
from cotgen.report.sweep import largest_pool
from cotgen.sweep.store import load_rows

TIE = 1e-3
"""A miss by less than this margin is a tie the judge's P(yes) cannot tell apart."""


def misses(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """One row per prompt whose orm pick among its first n paths is wrong while another is correct."""
    found = []
    for _, paths in largest_pool(rows, "orm").groupby("prompt_index"):
        first = paths.head(n)
        scores, correct = first["final_score"].to_numpy(float), first["correct"].to_numpy(bool)
        pick = int(np.argmax(scores))  # the first of the highest, as `choose` does
        if not correct[pick] and correct.any():
            found.append({"tag": first["tag"].iloc[0], "margin": scores[pick] - scores[correct].max(), "pick": scores[pick]})
    return pd.DataFrame(found, columns=["tag", "margin", "pick"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", type=Path, nargs="+", help="sweep folders with an orm pool")
    parser.add_argument("--n", type=int, nargs="+", default=[8, 20], help="the N of the picks (at most the pool's)")
    args = parser.parse_args(argv)
    print(f"| sweep | N | prompts | misses | {' | '.join(TAGS)} | median margin | misses by < {TIE:g} |")
    print("|---|---|---|---|" + "---|" * len(TAGS) + "---|---|")
    for folder in args.sweeps:
        rows = load_rows(folder).to_pandas()
        prompts = rows["prompt_index"].nunique()
        for n in args.n:
            found = misses(rows, n)
            tags = " | ".join(str(int((found["tag"] == tag).sum())) for tag in TAGS)
            median = f"{found['margin'].median():.1e}" if len(found) else "–"
            print(f"| {folder.name} | {n} | {prompts} | {len(found)} | {tags} | {median} | {int((found['margin'] < TIE).sum())} |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InputError as err:
        sys.exit(f"error: {err}")
