"""The paper's DPO rows in miniature: each method's held-out GenEval with its 95 % interval and its
difference from the starting policy's baseline with a *paired* interval (the same records, the same
path keys), as a Markdown table and a plot of held-out score per round with and without a verifier."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from cotgen.evaluate.bootstrap import bootstrap_ci, paired_difference_ci
from cotgen.evaluate.summary import summarize
from cotgen.prompts import TAGS
from cotgen.report.plot import PALETTE, Series, plot


@dataclass
class Method:
    """One row: a policy (and verifier) scored on a set of held-out records, one verdict per record."""

    name: str
    round: int
    """The DPO round of the policy (0: the starting one)."""
    verifier: str
    """"baseline" (one image), or the strategy and N that chose the image, e.g. "parm@8"."""
    records: str
    """Which records, e.g. "all 553" or "first 20 per tag": rows are paired within one set only."""
    tags: list[str]
    correct: list[bool]

    @property
    def overall(self) -> float:
        return summarize(zip(self.tags, self.correct)).overall


@dataclass
class Row:
    method: Method
    ci: tuple[float, float]
    difference: float
    """Overall minus the reference's (the starting policy's baseline on the same records)."""
    difference_ci: tuple[float, float] | None
    """Its paired 95 % interval; None for the reference itself."""


def compare(methods: list[Method], resamples: int = 1000, seed: int = 0) -> list[Row]:
    """Each method with its interval, and against the round-0 baseline of its records, paired."""
    rows = []
    for m in methods:
        ref = next((r for r in methods if r.records == m.records and r.round == 0 and r.verifier == "baseline"), None)
        if ref is None:
            raise ValueError(f"{m.name}: no round-0 baseline on the same records ({m.records}) to pair it with")
        if ref.tags != m.tags:
            raise ValueError(f"{m.name}: its records differ from those of {ref.name}; the rows cannot be paired")
        tags, mine, theirs = np.array(m.tags), np.array(m.correct, bool), np.array(ref.correct, bool)
        diff_ci = None if m is ref else paired_difference_ci(tags, mine, theirs, resamples, seed)
        rows.append(Row(m, bootstrap_ci(tags, mine, resamples, seed), m.overall - ref.overall, diff_ci))
    return rows


def dpo_markdown(rows: list[Row]) -> str:
    """The table: per tag, overall [95 % interval], difference from baseline [paired 95 % interval]."""
    header = ["method", "records", *TAGS, "overall [95 % CI]", "− baseline [paired 95 % CI]"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        m = row.method
        summary = summarize(zip(m.tags, m.correct))
        cells = [f"{summary.tags[t].mean:.3f}" if t in summary.tags else "–" for t in TAGS]
        diff = "–" if row.difference_ci is None else f"{row.difference:+.3f} [{row.difference_ci[0]:+.3f}, {row.difference_ci[1]:+.3f}]"
        lines.append("| " + " | ".join([m.name, m.records, *cells, f"{m.overall:.3f} [{row.ci[0]:.3f}, {row.ci[1]:.3f}]", diff]) + " |")
    return "\n".join(lines)


def rounds_plot(rows: list[Row], title: str) -> Image.Image:
    """Held-out overall per round, one line per (verifier, records), bars: 95 % bootstrap intervals."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.method.verifier, row.method.records), []).append(row)
    series = []
    for i, ((verifier, records), group) in enumerate(groups.items()):
        group.sort(key=lambda r: r.method.round)
        series.append(Series(
            f"{verifier}, {records}", [r.method.round + 0.03 * i for r in group], [r.method.overall for r in group],
            PALETTE[i % len(PALETTE)], lo=[r.ci[0] for r in group], hi=[r.ci[1] for r in group],
        ))  # fmt: skip
    return plot(series, title, "DPO round (0: the starting policy)", "held-out GenEval overall", log_x=False)
