"""A sweep's numbers: GenEval per strategy and N, where each came from, what it cost, and its 95 % CI.

A point (strategy, N) comes either from its own run (every parm++ and prm-beam N, baseline, and the
largest N of a pool) or from the first N paths of a pool run at a larger N (orm, prm best-of-N,
parm): the path such a run returns and its costs are recorded per row (`chosen_at`). Seconds are
measured per run only, so points read off a pool have none. Confidence intervals: bootstrap over
prompts (GenEval's overall, the mean of the tag means, recomputed on each resample). A strategy is
compared with the baseline *paired*: the same prompts, the same resamples of them, and the same
path keys (the baseline's one path is path 0 of every strategy's), so the interval of the
difference is much narrower than the two intervals side by side suggest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cotgen.errors import InputError
from cotgen.evaluate.bootstrap import bootstrap_ci, paired_difference_ci
from cotgen.evaluate.summary import Summary, format_table, summarize
from cotgen.verify.config import STRATEGIES


@dataclass
class Point:
    strategy: str
    n: int
    source: str
    """Which run the number comes from, e.g. "orm@8" or "first 2 paths of orm@8"."""
    verdicts: pd.DataFrame
    """One row per prompt: prompt_index, tag, correct, tokens, judge_calls, seconds (NaN off a pool)."""
    ci: tuple[float, float]

    @property
    def name(self) -> str:
        return f"{self.strategy}@{self.n}"

    @property
    def summary(self) -> Summary:
        return summarize(zip(self.verdicts.tag, self.verdicts.correct))

    def per_prompt(self, column: str) -> float:
        return float(self.verdicts[column].mean())


@dataclass
class Comparison:
    """A point against the baseline on the prompts both answered."""

    point: Point
    prompts: int
    difference: float
    """GenEval overall of the point minus the baseline's."""
    ci: tuple[float, float]
    """Paired 95 % bootstrap interval of the difference."""
    ceiling: float | None
    """Any-of-N at the point's N (pass@N on the same prompts): what a perfect verifier would reach."""

    @property
    def headroom(self) -> float | None:
        """Share of the gap between the baseline and the ceiling that the strategy recovers."""
        if self.ceiling is None:
            return None
        gap = self.ceiling - (self.point.summary.overall - self.difference)
        return self.difference / gap if gap > 0 else None


def compare_with_baseline(points: list[Point], rows: pd.DataFrame, resamples: int = 1000, seed: int = 0) -> list[Comparison]:
    """Each non-baseline point against baseline@1, paired over the prompts both answered (empty
    without a baseline)."""
    base = next((p for p in points if p.strategy == "baseline"), None)
    if base is None:
        return []
    oracle = oracle_curve(rows)
    ceilings = dict(oracle[1]) if oracle else {}
    out = []
    for p in points:
        if p.strategy == "baseline":
            continue
        out.append(Comparison(p, *paired(p.verdicts, base.verdicts, resamples, seed), ceilings.get(p.n)))
    return out


def paired(mine: pd.DataFrame, theirs: pd.DataFrame, resamples: int = 1000, seed: int = 0) -> tuple[int, float, tuple[float, float]]:
    """Two points' verdicts on the prompts both answered: how many, GenEval overall of the first minus
    the second's, and its paired 95 % bootstrap interval."""
    both = mine.merge(theirs, on=["prompt_index", "tag"], suffixes=("", "_theirs"))
    tags, one, two = both.tag.to_numpy(), both.correct.to_numpy(bool), both.correct_theirs.to_numpy(bool)
    difference = summarize(zip(tags, one)).overall - summarize(zip(tags, two)).overall
    return len(both), difference, paired_difference_ci(tags, one, two, resamples, seed)


def largest_pool(rows: pd.DataFrame, strategy: str) -> pd.DataFrame:
    """The rows of the strategy's pool at its largest N, by prompt and path."""
    found = rows[rows["pool"] & (rows["strategy"] == strategy)]
    if found.empty:
        raise InputError(f"the sweep has no {strategy} pool (it needs {strategy} among its strategies)")
    return found[found["n"] == found["n"].max()].sort_values(["prompt_index", "path"])


def sweep_points(rows: pd.DataFrame, resamples: int = 1000) -> list[Point]:
    """Every (strategy, N) the rows can answer; a point's own run wins over a pool's subset."""
    found: dict[tuple[str, int], tuple[int, str, pd.DataFrame]] = {}
    direct = rows[~rows["pool"] & rows["returned"]]
    for run, group in direct.groupby("run"):
        v = pd.DataFrame({"prompt_index": group.prompt_index, "tag": group.tag, "correct": group.correct, "tokens": group.run_image_tokens,
                          "judge_calls": group.run_judge_calls, "seconds": group.run_seconds})
        found[(group.strategy.iloc[0], int(group.n.iloc[0]))] = (1 << 30, run, v)
    picks = rows[rows["pool"]].explode(["chosen_at", "chosen_tokens", "chosen_judge_calls"]).dropna(subset=["chosen_at"])
    for (run, n), group in picks.groupby(["run", "chosen_at"]):
        pool_n, n = int(group.n.iloc[0]), int(n)
        v = pd.DataFrame({"prompt_index": group.prompt_index, "tag": group.tag, "correct": group.correct, "tokens": group.chosen_tokens,
                          "judge_calls": group.chosen_judge_calls, "seconds": group.run_seconds if n == pool_n else float("nan")})
        key = (group.strategy.iloc[0], n)
        if found.get(key, (-1,))[0] < pool_n:  # the largest pool has the most prompts in common
            found[key] = (pool_n, run if n == pool_n else f"first {n} paths of {run}", v)
    points = []
    for (strategy, n), (_, source, v) in sorted(found.items(), key=lambda item: (STRATEGIES.index(item[0][0]), item[0][1])):
        v = v.astype({"correct": bool, "tokens": float, "judge_calls": float, "seconds": float}).sort_values("prompt_index")
        points.append(Point(strategy, n, source, v.reset_index(drop=True), bootstrap_ci(v.tag.to_numpy(), v.correct.to_numpy(), resamples)))
    return points


def comparison_table(comparisons: list[Comparison]) -> str:
    """Each strategy's difference from the baseline with its paired interval, the any-of-N ceiling
    and the share of the headroom it recovers."""
    lines = [f"{'vs baseline@1':<16}{'prompts':>8}{'difference':>12}  paired 95% CI     any-of-N  headroom"]
    for c in comparisons:
        ceiling = "–" if c.ceiling is None else f"{c.ceiling:.3f}"
        headroom = "–" if c.headroom is None else f"{c.headroom:.0%}"
        lines.append(f"{c.point.name:<16}{c.prompts:>8}{c.difference:>+12.3f}  [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}]  {ceiling:>8}  {headroom:>8}")
    return "\n".join(lines)


def oracle_curve(rows: pd.DataFrame) -> tuple[str, list[tuple[int, float]]] | None:
    """GenEval if any of the first n paths counted (pass@n): the ceiling for every verifier. Needs an
    orm pool, where every path is decoded and scored."""
    pools = rows[(rows["strategy"] == "orm") & rows["pool"]]
    if pools.empty:
        return None
    run = pools.loc[pools.n.idxmax(), "run"]
    pool = pools[pools.run == run]
    curve = []
    for n in sorted({int(x) for xs in pool.chosen_at for x in xs}):
        hit = pool[pool.path < n].groupby(["prompt_index", "tag"]).correct.any().reset_index()
        curve.append((n, summarize(zip(hit.tag, hit.correct)).overall))
    return run, curve


def headline(points: list[Point]) -> list[Point]:
    """Each strategy at its largest N."""
    best: dict[str, Point] = {}
    for p in points:
        if p.strategy not in best or p.n > best[p.strategy].n:
            best[p.strategy] = p
    return list(best.values())


def text_table(points: list[Point]) -> str:
    """The strategy × tag table at each strategy's largest N, plus what each cost per prompt."""
    lines = [format_table({p.name: p.summary for p in points}), ""]
    lines.append(f"{'per prompt':<16}{'image tokens':>14}{'judge calls':>13}{'seconds':>10}  95% CI (overall)  source")
    for p in points:
        seconds = p.per_prompt("seconds")
        lines.append(
            f"{p.name:<16}{p.per_prompt('tokens'):>14.0f}{p.per_prompt('judge_calls'):>13.1f}"
            f"{'–' if np.isnan(seconds) else f'{seconds:.2f}':>10}  [{p.ci[0]:.3f}, {p.ci[1]:.3f}]    {p.source}"
        )
    return "\n".join(lines)
