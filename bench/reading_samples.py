"""Does a reading judge gain from more readings than its greedy one? A sweep's ORM pool rescored with
readings drawn from the judge's own distribution.

    python bench/reading_samples.py runs/sweep_tuning_hedged [--samples 8] [--n 2 4 8 20]

Every candidate of the sweep's orm pool (decoded from its stored image tokens by the sweep's
generator) is asked the ORM question by the sweep's judge, which writes its greedy reading and
`--samples` readings drawn at temperature 1 (torch seed 0, batches in a fixed order). Four scores:
  plain     P(yes | greedy reading r)
  hedged    P(r) · (P(yes | r) − ½) + ½, what cotgen scores (`cotgen.judge.reading.hedged`)
  marginal  ½ + Σ P(r) · (P(yes | r) − ½) over the distinct readings among the greedy and the drawn
            ones, the readings not written counted as ½: the hedge with more of the judge's mass
  mean      the mean of P(yes | r) over the drawn readings, a Monte Carlo estimate of the judge's
            P(yes) marginalised over its readings
Printed: balanced accuracy at ½ (pooled and mean over tags), and best-of-N's GenEval overall for
each N with each score (the first of the highest, as `choose` picks), each paired against the hedged
pick over the same prompts (95 % bootstrap). Costs 1 + samples readings per image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from PIL import Image

from cotgen.errors import InputError
from cotgen.evaluate.bootstrap import paired_difference_ci
from cotgen.evaluate.summary import summarize
from cotgen.generate import load_engine
from cotgen.judge import JudgePrompts, load_judge
from cotgen.judge.reading import UNANSWERED, hedged, write_readings
from cotgen.machine import describe_machine
from cotgen.report.sweep import largest_pool
from cotgen.sweep.store import load_rows
from cotgen.train.judge.metrics import balanced_accuracy

SCORES = ("plain", "hedged", "marginal", "mean")


def scores(judge, images: list[Image.Image], questions: list[str], samples: int) -> list[dict[str, float]]:
    """The four scores of each (image, question)."""
    inputs = judge.encode(images, questions)
    args = (judge.model, judge.processor.tokenizer, inputs, judge.reading, judge.answers)
    greedy = write_readings(*args)
    drawn = [write_readings(*args, sample=True) for _ in range(samples)]
    found = []
    for i, g in enumerate(greedy):
        distinct = {g.tokens: g}
        for reading in (d[i] for d in drawn):
            distinct.setdefault(reading.tokens, reading)
        found.append({
            "plain": g.p_yes,
            "hedged": hedged(torch.tensor(g.p_yes), torch.tensor(g.p_reading)).item() if g.answered else UNANSWERED,
            "marginal": UNANSWERED + sum(r.p_reading * (r.p_yes - UNANSWERED) for r in distinct.values()),
            "mean": float(np.mean([d[i].p_yes for d in drawn])) if drawn else g.p_yes,
        })  # fmt: skip
    return found


def rescore(folder: Path, samples: int, batch: int, prompts: int) -> pd.DataFrame:
    """The orm pool's rows (of the first `prompts` prompts, 0: all) with each candidate's four scores."""
    config = yaml.safe_load((folder / "config.yaml").read_text())
    pool = largest_pool(load_rows(folder).to_pandas(), "orm")
    if prompts:
        pool = pool[pool["prompt_index"].isin(sorted(pool["prompt_index"].unique())[:prompts])]
    pool = pool.reset_index(drop=True)
    engine, _ = load_engine(config["generator"])
    judge = load_judge(config["judge"])
    if judge.reading is None:
        raise InputError(f"{folder}: its judge {config['judge']!r} answers in one forward pass; only a reading judge writes readings")
    question = JudgePrompts(**config["verify"]["prompts"]).orm
    torch.manual_seed(0)
    found = []
    for start in range(0, len(pool), batch):
        chunk = pool.iloc[start : start + batch]
        tokens = torch.tensor(np.stack([np.asarray(t, dtype=np.int64) for t in chunk["tokens"]]))
        images = [Image.fromarray(pixels) for pixels in engine.decode_rows(tokens)]
        found += scores(judge, images, [question.format(prompt=p) for p in chunk["prompt"]], samples)
        print(f"{folder.name}: {start + len(chunk)}/{len(pool)} candidates", file=sys.stderr, flush=True)
    return pd.concat([pool, pd.DataFrame(found)], axis=1)


def best_of(pool: pd.DataFrame, score: str, n: int) -> pd.DataFrame:
    """Per prompt: the verdict of the first of the highest `score` among its first n paths."""
    picks = []
    for index, paths in pool.groupby("prompt_index"):
        first = paths.head(n)
        picks.append({"prompt_index": index, "tag": first["tag"].iloc[0], "correct": bool(first["correct"].iloc[int(np.argmax(first[score].to_numpy()))])})
    return pd.DataFrame(picks)


def report(folder: Path, pool: pd.DataFrame, ns: list[int], resamples: int) -> None:
    stored = (pool["hedged"] - pool["final_score"]).abs().max()
    print(f"\n{folder} ({pool['prompt_index'].nunique()} prompts, {len(pool)} candidates); hedged against the sweep's own scores: max |difference| {stored:.1e}")
    print("\n| score | balanced accuracy | mean over tags |\n|---|---|---|")
    for score in SCORES:
        pooled = _balanced(pool, score)
        tags = [_balanced(g, score) for _, g in pool.groupby("tag") if g["correct"].nunique() == 2]
        print(f"| {score} | {pooled:.3f} | {np.mean(tags):.3f} |")
    print("\n| N | " + " | ".join(SCORES) + " |\n|---|" + "---|" * len(SCORES))
    for n in ns:
        base = best_of(pool, "hedged", n)
        cells = []
        for score in SCORES:
            mine = best_of(pool, score, n)
            overall = summarize(zip(mine["tag"], mine["correct"])).overall
            if score == "hedged":
                cells.append(f"{overall:.3f}")
                continue
            difference = overall - summarize(zip(base["tag"], base["correct"])).overall
            low, high = paired_difference_ci(mine["tag"].to_numpy(), mine["correct"].to_numpy(bool), base["correct"].to_numpy(bool), resamples)
            cells.append(f"{overall:.3f} ({difference:+.3f} [{low:+.3f}, {high:+.3f}])")
        print(f"| {n} | " + " | ".join(cells) + " |")


def _balanced(rows: pd.DataFrame, score: str) -> float:
    return balanced_accuracy(rows[score].to_numpy(), ["yes" if c else "no" for c in rows["correct"]])["balanced"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", type=Path, nargs="+", help="sweep folders with an orm pool, verified by a reading judge")
    parser.add_argument("--samples", type=int, default=8, help="readings drawn per image beside the greedy one")
    parser.add_argument("--n", type=int, nargs="+", default=[2, 4, 8, 20], help="best-of-N at these N (at most the pool's)")
    parser.add_argument("--prompts", type=int, default=0, help="only the first N prompts of each sweep (0: all)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.samples < 1:
        raise InputError(f"--samples: must be at least 1, got {args.samples}")
    torch.set_num_threads(args.threads)
    print(f"machine: {describe_machine()}; {args.samples} drawn readings per image beside the greedy one")
    for folder in args.sweeps:
        report(folder, rescore(folder, args.samples, args.batch, args.prompts), args.n, args.resamples)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InputError as err:
        sys.exit(f"error: {err}")
