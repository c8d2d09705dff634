"""Small line and scatter plots with matplotlib (Agg, no display): log2 x axis, linear y."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator
from PIL import Image

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f", "#e377c2"]
DPI = 100


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    color: str
    lo: list[float] | None = None
    """Lower ends of error bars (with `hi`); NaN leaves a point without a bar."""
    hi: list[float] | None = None
    line: bool = True
    dashed: bool = False
    marker: bool = True
    radius: float = 4
    """Marker radius in pixels: give series drawn first larger markers, so points they share stay visible as rings."""
    names: list[str] = field(default_factory=list)
    """Text beside each point."""


def plot(
    series: list[Series], title: str, xlabel: str, ylabel: str, size: tuple[int, int] = (760, 500), log_x: bool = True
) -> Image.Image:
    """The series on one set of axes, legend on the right, as an RGB image of `size` pixels; a log2 x
    axis, or with `log_x` False a linear one with a tick at every integer x (rounds, say)."""
    figure = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    if log_x:
        ax.set_xscale("log", base=2)
    for s in series:
        ax.plot(
            s.xs, s.ys, color=s.color, label=s.label,
            linestyle=("--" if s.dashed else "-") if s.line else "none", linewidth=2,
            marker="o" if s.marker else None, markersize=2 * s.radius * 72 / DPI, markeredgewidth=0,
        )  # fmt: skip
        if s.lo and s.hi:
            ax.vlines(s.xs, s.lo, s.hi, color=s.color, linewidth=1)
            ax.plot([*s.xs, *s.xs], [*s.lo, *s.hi], color=s.color, linestyle="none", marker="_", markersize=8)  # the caps
        for x, y, name in zip(s.xs, s.ys, s.names):
            ax.annotate(name, (x, y), xytext=(6, 6), textcoords="offset points", color=s.color, fontsize=8)
    if log_x:
        _ticks(ax, [x for s in series for x in s.xs])
    else:
        ax.xaxis.set_major_locator(FixedLocator(sorted({float(round(x)) for s in series for x in s.xs})))
    ys = [y for s in series for y in (s.ys + (s.lo or []) + (s.hi or [])) if not math.isnan(y)]
    low, high = ax.get_ylim()
    if ys and 0 <= min(ys) and max(ys) <= 1:  # a rate: never show outside [0, 1]
        ax.set_ylim(max(low, 0.0), min(high, 1.0))
    ax.grid(axis="y", color="#e6e6e6")
    ax.set_axisbelow(True)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=9)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")


def _ticks(ax, xs: list[float]) -> None:
    """Ticks at the powers of two in view, or, when fewer than two are, at the points' x rounded
    (points may be dodged sideways)."""
    low, high = ax.get_xlim()
    powers = [2.0**k for k in range(math.ceil(math.log2(low)), math.floor(math.log2(high)) + 1)]
    ticks = powers if len(powers) >= 2 else sorted({float(round(x)) for x in xs})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{x:g}" for x in ticks])
