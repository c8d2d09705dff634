"""`cotgen report SWEEP_DIR`: a sweep's Markdown report with its table, curves, Pareto plot and strips."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import yaml
from PIL import Image, ImageDraw

from cotgen.machine import describe_machine
from cotgen.prompts import TAGS
from cotgen.report.plot import PALETTE, Series, plot
from cotgen.report.sweep import (
    Comparison,
    Point,
    compare_with_baseline,
    comparison_table,
    headline,
    oracle_curve,
    sweep_points,
    text_table,
)
from cotgen.sweep.store import load_rows
from cotgen.verify.config import STRATEGIES

COLORS = dict(zip(STRATEGIES, PALETTE))


def curves_plot(points: list[Point], oracle) -> Image.Image:
    """GenEval against N per strategy (the paper's Figure 3), 95 % intervals as bars."""
    ns = sorted({p.n for p in points})
    strategies = list(dict.fromkeys(p.strategy for p in points))
    series, reference = [], None
    for k, strategy in enumerate(strategies):
        mine = [p for p in points if p.strategy == strategy]
        dodge = 2 ** (0.04 * (k - (len(strategies) - 1) / 2))  # side by side, so equal scores stay visible
        if strategy == "baseline":  # one sample, whatever N: a flat reference, drawn over the others
            overall = mine[0].summary.overall
            reference = Series("baseline", [ns[0], ns[-1]], [overall, overall], COLORS[strategy], dashed=True, marker=False)
            continue
        series.append(
            Series(strategy, [p.n * dodge for p in mine], [p.summary.overall for p in mine], COLORS[strategy], lo=[p.ci[0] for p in mine], hi=[p.ci[1] for p in mine])
        )
    if oracle:
        run, curve = oracle
        series.append(Series(f"any of N ({run})", [n for n, _ in curve], [v for _, v in curve], "#999999", dashed=True, marker=False))
    if reference:
        series.append(reference)
    return plot(series, "GenEval overall against N (bars: 95% bootstrap CI)", "N (candidate paths per prompt)", "GenEval overall")


def pareto_plot(points: list[Point]) -> Image.Image:
    """GenEval against image tokens decoded per prompt; the dashed line joins the points no other
    point beats on both."""
    series = []
    strategies = list(dict.fromkeys(p.strategy for p in points))
    for k, strategy in enumerate(strategies):
        mine = [p for p in points if p.strategy == strategy]
        series.append(
            Series(strategy, [p.per_prompt("tokens") for p in mine], [p.summary.overall for p in mine], COLORS[strategy], line=False,
                   names=[str(p.n) for p in mine], radius=3 + 2 * (len(strategies) - 1 - k))
        )  # fmt: skip
    frontier, best = [], -1.0
    for p in sorted(points, key=lambda p: (p.per_prompt("tokens"), -p.summary.overall)):
        if p.summary.overall > best:
            frontier.append(p)
            best = p.summary.overall
    series.append(Series("Pareto front", [p.per_prompt("tokens") for p in frontier], [p.summary.overall for p in frontier], "#000000", dashed=True, marker=False))
    return plot(series, "GenEval overall against image tokens decoded (labels: N)", "image tokens decoded per prompt", "GenEval overall")


def strip_figure(root: Path, run: str, index: int, rows: pd.DataFrame) -> Image.Image:
    """Every path of one prompt step by step (the paper's Figure 2): previews after each checkpoint
    step, greyed after the step where the path was pruned, with the judge's scores and the verdict."""
    paths = rows[(rows.run == run) & (rows.prompt_index == index) & (rows["round"] == 0)].sort_values("path")
    strips = [Image.open(root / "strips" / run / f"{index:05d}" / f"{p:02d}.png").convert("RGB") for p in paths.path]
    side = strips[0].height
    steps = (strips[0].width + 4) // (side + 4)
    scale, label_w, text_w, row_h = 2, 60, 430, side * 2 + 8
    figure = Image.new("RGB", (label_w + steps * (side * scale + 6) + text_w, 30 + row_h * len(strips)), "white")
    draw = ImageDraw.Draw(figure)
    draw.text((8, 8), f"{run}, prompt {index:05d}: \"{paths.prompt.iloc[0]}\"", fill="black")
    for r, (strip, (_, row)) in enumerate(zip(strips, paths.iterrows())):
        y = 30 + r * row_h
        draw.text((8, y + row_h // 2), f"path {row.path}", fill="black", anchor="lm")
        for s in range(steps):
            frame = strip.crop((s * (side + 4), 0, s * (side + 4) + side, side)).resize((side * scale, side * scale), Image.NEAREST)
            if not pd.isna(row.pruned_at) and s + 1 > row.pruned_at:
                frame = Image.blend(frame, Image.new("RGB", frame.size, "white"), 0.75)
            x = label_w + s * (side * scale + 6)
            figure.paste(frame, (x, y))
            draw.rectangle([x - 1, y - 1, x + side * scale, y + side * scale], outline="#bbbbbb")
        draw.text((label_w + steps * (side * scale + 6) + 4, y + 4), _path_text(row), fill="black", spacing=4)
        if row.returned:
            draw.rectangle([2, y - 2, figure.width - 3, y + side * scale + 2], outline="#d62728", width=2)
    return figure


def _path_text(row) -> str:
    lines = []
    if len(row.step_scores):
        lines.append("judge P(yes) by step: " + " ".join(f"{s:.2f}" for s in row.step_scores))
    if not pd.isna(row.clear_at):
        lines.append(f"clear at step {int(row.clear_at)}, potential {row.potential:.2f}")
    if not pd.isna(row.pruned_at):
        lines.append(f"pruned after step {int(row.pruned_at)} ({row.reason})")
    elif isinstance(row.reason, str):
        lines.append(row.reason)
    if not pd.isna(row.final_score):
        lines.append(f"final P(yes) {row.final_score:.2f}")
    verdict = "no image" if pd.isna(row.correct) else ("correct" if row.correct else "wrong: " + "; ".join(row.reasons))
    lines.append(("RETURNED, " if row.returned else "") + verdict)
    return "\n".join(lines)


def _markdown_table(points: list[Point]) -> str:
    tags = [t for t in TAGS if any(t in p.summary.tags for p in points)]
    lines = ["| strategy@N | " + " | ".join(tags) + " | overall | 95% CI | image tokens / prompt | judge calls / prompt | s / prompt | from |"]
    lines.append("|" + "---|" * (len(tags) + 7))
    for p in points:
        s, seconds = p.summary, p.per_prompt("seconds")
        cells = [f"{s.tags[t].mean:.3f}" if t in s.tags else "–" for t in tags]
        ci = "–" if math.isnan(p.ci[0]) else f"{p.ci[0]:.3f}–{p.ci[1]:.3f}"
        lines.append(
            f"| {p.name} | " + " | ".join(cells) + f" | **{s.overall:.3f}** | {ci} | {p.per_prompt('tokens'):.0f} | "
            f"{p.per_prompt('judge_calls'):.1f} | {'–' if math.isnan(seconds) else f'{seconds:.2f}'} | {p.source} |"
        )
    return "\n".join(lines)


def _comparison_markdown(comparisons: list[Comparison]) -> str:
    if not comparisons:
        return "No baseline in this sweep: nothing to compare with."
    lines = ["| strategy@N | prompts | difference from baseline | paired 95% CI | any of N | share of the headroom recovered |", "|---|---|---|---|---|---|"]
    for c in comparisons:
        ci = "–" if math.isnan(c.ci[0]) else f"{c.ci[0]:+.3f} to {c.ci[1]:+.3f}"
        ceiling = "–" if c.ceiling is None else f"{c.ceiling:.3f}"
        headroom = "–" if c.headroom is None else f"{c.headroom:.0%}"
        lines.append(f"| {c.point.name} | {c.prompts} | **{c.difference:+.3f}** | {ci} | {ceiling} | {headroom} |")
    return "\n".join(lines)


def write_report(root: str | Path, resamples: int = 1000) -> tuple[Path, str]:
    """Write root/report/report.md and its PNGs; returns the path and the plain-text table."""
    root = Path(root)
    rows = load_rows(root).to_pandas()
    points = sweep_points(rows, resamples)
    comparisons = compare_with_baseline(headline(points), rows, resamples)
    out = root / "report"
    out.mkdir(exist_ok=True)
    curves_plot(points, oracle_curve(rows)).save(out / "curves.png")
    pareto_plot(points).save(out / "pareto.png")
    strip_runs = sorted(p.name for p in (root / "strips").iterdir()) if (root / "strips").is_dir() else []
    strips = []
    for run in strip_runs:
        for folder in sorted((root / "strips" / run).iterdir()):
            name = f"strips_{run.replace('@', '_')}_{folder.name}.png"
            strip_figure(root, run, int(folder.name), rows).save(out / name)
            strips.append(name)
    config = yaml.safe_load((root / "config.yaml").read_text()) if (root / "config.yaml").is_file() else {}
    prompts = rows.prompt_index.nunique()
    text = f"""# Sweep report: {root.name}

{prompts} prompts ({config.get('records', '?')}, seed {config.get('seed', '?')}), generator `{config.get('generator', '?')}`,
judge `{config.get('judge', '?')}`; rows: `{root}/rows` ({len(rows)} paths); images in GenEval's layout:
`{root}/images/<strategy>@<N>/`. Report written on {describe_machine()}.

## Strategy × tag at each strategy's largest N

{_markdown_table(headline(points))}

## Against the baseline, paired

The difference of each strategy (at its largest N) from baseline@1 on the same prompts, with a 95 %
bootstrap interval that resamples the prompts once for both (the baseline's path is path 0 of every
strategy's: the same key, the same image); "any of N": GenEval if any of the first N paths of the
orm pool counted, the ceiling of every verifier; the share of the headroom is
(strategy − baseline) / (any of N − baseline).

{_comparison_markdown(comparisons)}

## Every point

{_markdown_table(points)}

**Where the numbers come from.** A point whose "from" names its own run (e.g. `orm@8`) was measured
by running the strategy at that N. "first n paths of orm@8" was read off the run at N=8: path i of a
prompt has the key (seed, prompt, i) whatever the batch, and under orm, prm best-of-N and parm
without a cap a path's record depends on nothing but its key, so a run at n would have decoded, asked
and returned exactly what the first n paths of the larger run did (the image tokens and judge calls
shown are those of the first n paths; seconds are only measured for whole runs). parm++, parm with a
cap (`keep`) and prm beam search cannot be read off a pool and are run at each N. Intervals: 95 % bootstrap over prompts
({resamples} resamples; overall recomputed as the mean of the tag means on each).

## GenEval against N

![GenEval against N](curves.png)

## Accuracy against image tokens decoded

![GenEval against image tokens](pareto.png)

## Step by step

""" + "\n\n".join(f"![{s}]({s})" for s in strips) + "\n"
    (out / "report.md").write_text(text)
    return out / "report.md", text_table(headline(points)) + "\n\n" + comparison_table(comparisons)
