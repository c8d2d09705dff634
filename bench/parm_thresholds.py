"""PARM's potential threshold and cap: GenEval against image tokens along them, read off one sweep.

    python bench/parm_thresholds.py runs/sweep_tuning          # choose on training-split prompts
    python bench/parm_thresholds.py runs/sweep_table1 --thresholds 0.5 0.9 --keep 0 6

A parm pool (a run without a cap) asked each path clarity at each step until clear and potential
once, at the first clear step; a run with another `potential_threshold` or `keep` would have asked the
same questions and differed only in which paths it prunes and scores (`cotgen.verify.pool.replayed_parm`). The orm pool of
the same sweep decoded every path (the same keys) to the end, so its final score and verdict stand
in for a path this parm run pruned (`--orm`: another sweep's, with the same candidates and judge).
For each threshold, cap and N: GenEval overall of the path picked,
image tokens per prompt as a share of ORM@N's, and the paired difference from ORM@N (same prompts,
same keys, 95 % bootstrap). Two checks first: parm's finished paths decoded the same tokens as orm's,
and at the sweep's own threshold the picks are the run's. The choice: the threshold with the
setting with the highest overall at the largest N among those within `--budget` of ORM's tokens
(fewer tokens on a tie); choose it on training-split prompts (`jobs/configs/sweep_tuning.yaml`), report on held-out.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from cotgen.config import build_config
from cotgen.errors import InputError
from cotgen.evaluate.summary import summarize
from cotgen.generate.engine import PathKey, checkpoint_rows
from cotgen.report.plot import PALETTE, Series, plot
from cotgen.report.sweep import largest_pool, paired, sweep_points
from cotgen.sweep.store import check_same_candidates, load_rows, read_identity
from cotgen.train.judge.metrics import balanced_accuracy
from cotgen.verify.config import VerifyConfig
from cotgen.verify.pool import replayed_parm, subset_picks
from cotgen.verify.trace import PathTrace

DEFAULT_THRESHOLDS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
DEFAULT_KEEPS = (0, 2, 4, 6, 8, 10, 12)


def none(value, kind=float):
    """A Parquet value as read by pandas (nulls as None or NaN, integers with nulls as floats): None or `kind`."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else kind(value)


def parm_traces(group: pd.DataFrame, seed: int) -> list[PathTrace]:
    return [
        PathTrace(PathKey(seed, r.key, int(r.sample)), list(r.step_scores), none(r.clear_at, int), none(r.potential), none(r.pruned_at, int), none(r.reason, str), none(r.final_score))
        for r in group.itertuples()
    ]  # fmt: skip


def ordered(traces: list[PathTrace], threshold: float) -> list[PathTrace]:
    """The traces with each hopeful potential replaced by one that falls with the path's index (still
    hopeful), so a cap ranks paths by order: the control for what potential's ranking adds."""
    n = len(traces)
    return [t if t.potential is None or t.potential < threshold else replace(t, potential=threshold + (1 - threshold) * (n - k) / n)
            for k, t in enumerate(traces)]  # fmt: skip


class Pools:
    """A sweep's parm and orm pools, path by path, and the checks that they decoded the same images."""

    def __init__(self, root: Path, orm_root: Path | None = None):
        self.config = read_identity(root)
        self.verify = build_config(VerifyConfig, self.config["verify"], "verify")
        rows = load_rows(root).to_pandas()
        if orm_root is not None:
            check_same_candidates(root, orm_root, also=("judge_weights",))
        orm_rows = rows if orm_root is None else load_rows(orm_root).to_pandas()
        self.parm, self.orm = largest_pool(rows, "parm"), largest_pool(orm_rows, "orm")
        self.n = int(min(self.parm["n"].max(), self.orm["n"].max()))
        self.orm_points = {p.n: p for p in sweep_points(orm_rows, 0) if p.strategy == "orm"}
        self.grid = round(len(self.orm["tokens"].iloc[0]) ** 0.5)
        self.step_rows = checkpoint_rows(self.grid, self.config["sampling"]["steps"])
        self.prompts = sorted(set(self.parm.prompt_index) & set(self.orm.prompt_index))
        self.by_prompt = {i: (self.parm[self.parm.prompt_index == i].head(self.n), self.orm[self.orm.prompt_index == i].head(self.n)) for i in self.prompts}
        # what the replay needs of each prompt, read off the rows once for every threshold
        self.traces = {i: parm_traces(parm, self.config["seed"]) for i, (parm, _) in self.by_prompt.items()}
        self.outcomes = {i: [none(s) for s in orm.final_score] for i, (_, orm) in self.by_prompt.items()}

    def differing_images(self) -> int:
        """Paths that both pools finished with different tokens (0: the same images)."""
        count = 0
        for parm, orm in self.by_prompt.values():
            for a, b in zip(parm.itertuples(), orm.itertuples()):
                if none(a.pruned_at) is None and list(a.tokens) != list(b.tokens):
                    count += 1
        return count

    def picks(self, threshold: float, keep: int, ns: list[int], by_order: bool = False) -> dict[int, pd.DataFrame]:
        """For each n: one row per prompt (prompt_index, tag, correct, tokens, chosen) of parm at
        `threshold` and `keep` over the first n paths. `by_order`: the control, whose cap keeps the
        earliest hopeful paths instead of the most hopeful (the threshold prunes the same paths)."""
        out = {n: [] for n in ns}
        steps = len(self.step_rows)
        for i, (_, orm) in self.by_prompt.items():
            correct = orm.correct.to_numpy(bool)
            own = ordered(self.traces[i], threshold) if by_order else self.traces[i]
            for n in ns:
                traces = replayed_parm(own[:n], self.outcomes[i][:n], threshold, keep, steps)
                (pick,) = subset_picks("parm", traces, [n], self.step_rows, self.grid)
                out[n].append({"prompt_index": i, "tag": orm.tag.iloc[0], "correct": bool(correct[pick.chosen]),
                               "tokens": float(pick.costs.image_tokens), "chosen": pick.chosen})  # fmt: skip
        return {n: pd.DataFrame(v) for n, v in out.items()}

    def clarity_by_step(self, threshold: float) -> list[dict]:
        """Per checkpoint step (None: never clear): the paths the judge first called clear there, the
        share of them whose final image counts, and how well potential (at `threshold`) told those
        apart, as balanced accuracy against that verdict."""
        steps = {}
        for i, (_, orm) in self.by_prompt.items():
            for trace, correct in zip(self.traces[i], orm.correct.to_numpy(bool)):
                steps.setdefault(trace.clear_at, []).append((trace.potential, correct))
        total = sum(len(v) for v in steps.values())
        table = []
        for step in sorted(steps, key=lambda s: (s is None, s)):
            paths = steps[step]
            verdicts = ["yes" if c else "no" for _, c in paths]
            asked = [(p, v) for (p, _), v in zip(paths, verdicts) if p is not None]
            accuracy = balanced_accuracy(*zip(*asked), threshold=threshold)["balanced"] if asked else None
            table.append({"step": step, "paths": len(paths), "share": len(paths) / total, "counts": verdicts.count("yes") / len(paths), "potential": accuracy})
        return table

    def recorded_picks(self, n: int) -> list[int]:
        """The path the parm run picked at n, per prompt (from its `chosen_at`)."""
        return [next(k for k, r in enumerate(parm.itertuples()) if n in list(r.chosen_at)) for parm, _ in self.by_prompt.values()]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="a sweep folder with orm and parm pools")
    parser.add_argument("--orm", type=Path, help="the sweep folder whose orm pool stands in (default: SWEEP's own; the same candidates and judge)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(DEFAULT_THRESHOLDS))
    parser.add_argument("--keep", type=int, nargs="+", default=list(DEFAULT_KEEPS), help="caps to replay (0: none)")
    parser.add_argument("--budget", type=float, default=0.6, help="largest share of ORM@N's image tokens the choice may spend")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--figure", type=Path, help="where the plot goes (default: SWEEP/report/parm_thresholds.png)")
    args = parser.parse_args(argv)
    if any(not 0 <= t <= 1 for t in args.thresholds):
        parser.error("--thresholds must lie within [0, 1]")
    if any(k < 0 for k in args.keep):
        parser.error("--keep must be 0 (no cap) or a number of paths")
    pools = Pools(args.sweep, args.orm)
    ns = sorted(n for n in pools.orm_points if 1 < n <= pools.n)
    own, clarity = pools.verify.potential_threshold, pools.verify.clear_at
    differing = pools.differing_images()
    replayed = pools.picks(own, 0, ns)
    mismatched = sum(int(a != b) for n in ns for a, b in zip(replayed[n].chosen, pools.recorded_picks(n)))
    print(f"{args.sweep}: {len(pools.prompts)} prompts, pools at N = {pools.n}, clarity threshold {clarity:g}; parm's finished paths whose tokens differ from orm's: {differing}; "
          f"picks at its own threshold {own} that differ from the run's: {mismatched} of {len(ns) * len(pools.prompts)}")  # fmt: skip
    if mismatched:
        raise SystemExit("the replay does not reproduce the run's picks: the settings below would not be what a run does")
    print(f"\nWhere clarity was first declared (clarity {clarity:g}), with potential's balanced accuracy at {own:g} against the final verdict:")
    print("| step | paths | share | final image counts | potential, balanced |\n|---|---|---|---|---|")
    for r in pools.clarity_by_step(own):
        step = "never clear" if r["step"] is None else f"{r['step']} of {len(pools.step_rows)}"
        potential = "–" if r["potential"] is None else f"{r['potential']:.3f}"
        print(f"| {step} | {r['paths']} | {r['share']:.0%} | {r['counts']:.2f} | {potential} |")
    print()
    table = []
    for keep in sorted(set(args.keep)):
        for t in sorted(set(args.thresholds) | {own}):
            for n, v in pools.picks(t, keep, ns).items():
                orm = pools.orm_points[n]
                _, difference, ci = paired(v, orm.verdicts, args.resamples)
                share = v.tokens.mean() / orm.per_prompt("tokens")
                table.append({"threshold": t, "keep": keep, "n": n, "overall": summarize(zip(v.tag, v.correct)).overall, "token_share": share,
                              "minus_orm": difference, "ci": ci, "orm": orm.summary.overall})  # fmt: skip
    print("| potential threshold | keep | N | GenEval overall | ORM@N | − ORM@N (paired 95 %) | tokens / ORM@N's |\n|---|---|---|---|---|---|---|")
    for r in table:
        mark = " (the run's)" if r["threshold"] == own and not r["keep"] else ""
        print(f"| {r['threshold']:g}{mark} | {r['keep'] or '–'} | {r['n']} | {r['overall']:.3f} | {r['orm']:.3f} | {r['minus_orm']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}] | {r['token_share']:.0%} |")
    top = [r for r in table if r["n"] == max(ns) and r["token_share"] <= args.budget]
    if top:
        best = max(top, key=lambda r: (round(r["overall"], 9), -r["token_share"]))
        print(f"\nchosen (N = {max(ns)}, within {args.budget:.0%} of ORM's tokens): potential_threshold {best['threshold']:g}, keep {best['keep']}: "
              f"{best['overall']:.3f}, {best['minus_orm']:+.3f} from ORM [{best['ci'][0]:+.3f}, {best['ci'][1]:+.3f}], {best['token_share']:.0%} of its tokens")  # fmt: skip
        if best["keep"]:
            n = max(ns)
            control, chosen = pools.picks(best["threshold"], best["keep"], [n], by_order=True)[n], pools.picks(best["threshold"], best["keep"], [n])[n]
            _, difference, ci = paired(chosen, control, args.resamples)
            print(f"the same cap keeping the earliest paths instead of the most hopeful: {summarize(zip(control.tag, control.correct)).overall:.3f}; "
                  f"potential's ranking adds {difference:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]")  # fmt: skip
    else:
        print(f"\nno setting keeps PARM within {args.budget:.0%} of ORM's tokens at N = {max(ns)}")
    figure = args.figure or args.sweep / "report" / "parm_thresholds.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    series = []
    for k, keep in enumerate(sorted(set(args.keep))):
        points = sorted((r for r in table if r["n"] == max(ns) and r["keep"] == keep), key=lambda r: r["threshold"])
        label = f"PARM@{max(ns)}, " + (f"keep {keep}" if keep else "no cap")
        series.append(Series(label, [r["token_share"] * pools.orm_points[max(ns)].per_prompt("tokens") for r in points], [r["overall"] for r in points],
                             PALETTE[k % len(PALETTE)], radius=3, names=[f"{r['threshold']:g}" for r in points] if not keep else []))  # fmt: skip
    orm_ns = sorted(pools.orm_points)
    series.append(Series("ORM@N", [pools.orm_points[n].per_prompt("tokens") for n in orm_ns], [pools.orm_points[n].summary.overall for n in orm_ns],
                         "#000000", radius=6, names=[str(n) for n in orm_ns]))  # fmt: skip
    title = f"PARM@{max(ns)} by threshold and cap: {args.sweep.name}, {len(pools.prompts)} prompts, clarity {clarity:g}"
    plot(series, title, "image tokens per prompt", "GenEval overall", size=(880, 520)).save(figure)
    (figure.with_suffix(".json")).write_text(json.dumps(table, indent=1))
    print(f"wrote {figure} and {figure.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InputError as err:
        sys.exit(f"error: {err}")
