"""How well can any judge answer potential at the first clear step? The label's own noise, measured.

    python bench/potential_ceiling.py                      # the 553 held-out records, 4 + 12 rollouts
    python bench/potential_ceiling.py --records 120 --fresh 8

Potential's label (`cotgen.train.judge.rollouts`) is read off 4 rollouts of a prefix: a path's first
clear step is the first whose 4 rollouts agree, and the label is their verdict. A prefix whose true
pass rate is 0.7 is clear by 4 rollouts a quarter of the time, and then labelled "no" one time in
thirty. This bench rolls each held-out path out to its first clear step exactly as the data does (the
same path keys, so the same labels), draws `--fresh` more rollouts from that prefix, and scores an
oracle that answers "yes" when most fresh rollouts pass: a judge that knew each prefix's pass rate
(up to the noise of the fresh estimate). Its balanced accuracy against the labels, pooled and as the
mean over tags, is what the potential figures of the card can reach with these labels.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from cotgen.prompts import TAGS
from cotgen.train.judge.generated import heldout_records
from cotgen.train.judge.metrics import balanced_accuracy, tag_mean
from cotgen.train.judge.rollouts import prefix_rollouts


def first_clear(records, label_rollouts: int, fresh: int, seed: int, generator: str, batch: int) -> list[dict]:
    """Each path's first clear prefix: its step, label and the fresh rollouts' pass rate."""
    rows = []
    for p in prefix_rollouts(records, label_rollouts + fresh, seed, generator, batch, progress=True, until_clear=label_rollouts):
        if p.clear_by(label_rollouts):
            rows.append({"record": p.record, "tag": records[p.record].tag, "step": p.step, "label": p.passes[0],
                         "fresh_pass_rate": float(np.mean(p.passes[label_rollouts:]))})  # fmt: skip
    return rows


def oracle(rows: list[dict]) -> dict:
    """Balanced accuracy of answering yes where the fresh pass rate is above one half (ties: yes)."""
    def score(subset):
        return balanced_accuracy([float(r["fresh_pass_rate"] >= 0.5) for r in subset], ["yes" if r["label"] else "no" for r in subset])

    by_tag = defaultdict(list)
    for r in rows:
        by_tag[r["tag"]].append(r)
    result = {"overall": score(rows), **{tag: score(by_tag[tag]) for tag in TAGS if by_tag[tag]}}
    result["tag_mean"] = tag_mean(result)
    return result


def balanced_ci(rows: list[dict], resamples: int = 2000) -> tuple[float, float]:
    """95 % bootstrap interval of the pooled oracle's balanced accuracy over the paths."""
    rng = np.random.default_rng(0)
    values = [oracle([rows[i] for i in rng.integers(0, len(rows), len(rows))])["overall"]["balanced"] for _ in range(resamples)]
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def table(result: dict, rows: list[dict]) -> str:
    lines = ["| tag | first-clear paths | labelled no | oracle says no where labelled no | oracle says yes where labelled yes | balanced |", "|---|---|---|---|---|---|"]
    for tag in (*TAGS, "overall"):
        if tag not in result:
            continue
        r = result[tag]
        lines.append(f"| {tag} | {r['n']} | {r['n'] - r['positives']} | {fmt(r['tnr'])} | {fmt(r['tpr'])} | {fmt(r['balanced'])} |")
    steps = np.bincount([r["step"] for r in rows])[1:]
    lines.append(f"\nmean over tags {result['tag_mean']:.3f}; paths by first clear step: {', '.join(f'step {s + 1}: {c}' for s, c in enumerate(steps))}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=553, help="held-out records, spread over the tags (553: all)")
    ap.add_argument("--rollouts", type=int, default=4, help="rollouts the label is read off (the data's prefix_rollouts)")
    ap.add_argument("--fresh", type=int, default=12, help="further rollouts that estimate each prefix's pass rate")
    ap.add_argument("--seed", type=int, default=0, help="the data's seed (judge.yaml's)")
    ap.add_argument("--generator", default="embedded")
    ap.add_argument("--batch", type=int, default=32, help="images decoded together")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/potential_ceiling.json"))
    args = ap.parse_args()
    if args.rollouts < 2 or args.fresh < 1:
        ap.error("--rollouts must be at least 2 and --fresh at least 1")
    torch.set_num_threads(args.threads)
    rows = first_clear(heldout_records(args.records), args.rollouts, args.fresh, args.seed, args.generator, args.batch)
    result = oracle(rows)
    low, high = balanced_ci(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "result": result, "interval": [low, high], "paths": rows}))
    print(table(result, rows))
    print(f"pooled balanced {result['overall']['balanced']:.3f} (95 % bootstrap {low:.3f}–{high:.3f}); wrote {args.out}")


if __name__ == "__main__":
    main()
