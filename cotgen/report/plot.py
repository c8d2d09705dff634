"""Small line and scatter plots drawn with PIL (no plotting library needed): log2 x axis, linear y."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f", "#e377c2"]


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    color: str
    lo: list[float] | None = None
    """Lower ends of error bars (with `hi`)."""
    hi: list[float] | None = None
    line: bool = True
    dashed: bool = False
    marker: bool = True
    radius: float = 4
    """Marker radius: give series drawn first larger markers, so points they share stay visible as rings."""
    names: list[str] = field(default_factory=list)
    """Text beside each point."""


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _nice_step(span: float) -> float:
    raw = span / 6
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def plot(series: list[Series], title: str, xlabel: str, ylabel: str, size: tuple[int, int] = (760, 500)) -> Image.Image:
    width, height = size
    left, right, top, bottom = 70, 190, 40, 55
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in (s.ys + (s.lo or []) + (s.hi or [])) if not math.isnan(y)]
    x0, x1 = math.log2(min(xs)), math.log2(max(xs))
    if x1 - x0 < 1e-9:
        x0, x1 = x0 - 1, x1 + 1
    pad = (x1 - x0) * 0.05
    x0, x1 = x0 - pad, x1 + pad
    step = _nice_step(max(max(ys) - min(ys), 0.05))
    y0 = max(0.0, math.floor(min(ys) / step) * step)
    y1 = min(1.0, math.ceil(max(ys) / step) * step) if max(ys) <= 1 else math.ceil(max(ys) / step) * step
    if y1 <= y0:
        y1 = y0 + step

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (math.log2(x) - x0) / (x1 - x0) * (width - left - right), height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom))

    small, normal = _font(12), _font(14)
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    y = y0
    while y <= y1 + 1e-9:
        _, py = px(2 ** x0, y)
        draw.line([left, py, width - right, py], fill="#e6e6e6")
        draw.text((left - 6, py), f"{y:.2f}", fill="black", font=small, anchor="rm")
        y += step
    powers = [2**k for k in range(math.ceil(x0), math.floor(x1) + 1)]
    for x in powers if len(powers) >= 2 else sorted({round(x) for x in xs}):
        qx, _ = px(x, y0)
        draw.line([qx, height - bottom, qx, height - bottom + 4], fill="black")
        draw.text((qx, height - bottom + 6), f"{x:g}", fill="black", font=small, anchor="mt")
    draw.text(((left + width - right) / 2, height - 18), xlabel, fill="black", font=normal, anchor="mm")
    draw.text((width / 2, 18), title, fill="black", font=normal, anchor="mm")
    label = Image.new("RGBA", (height, 20), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((height / 2, 10), ylabel, fill="black", font=normal, anchor="mm")
    image.paste(label.rotate(90, expand=True), (4, 0), label.rotate(90, expand=True))
    for s in series:
        points = [px(x, y) for x, y in zip(s.xs, s.ys)]
        if s.line and len(points) > 1:
            if s.dashed:
                for a, b in zip(points, points[1:]):
                    dashes = max(1, int(math.dist(a, b) / 12))  # 6 px on, 6 px off
                    for t in range(dashes):
                        p, q = t / dashes, (t + 0.5) / dashes
                        draw.line([a[0] + (b[0] - a[0]) * p, a[1] + (b[1] - a[1]) * p, a[0] + (b[0] - a[0]) * q, a[1] + (b[1] - a[1]) * q], fill=s.color, width=2)
            else:
                draw.line(points, fill=s.color, width=2)
        for i, (qx, qy) in enumerate(points):
            if s.lo and s.hi and not math.isnan(s.lo[i]):
                _, a = px(s.xs[i], s.lo[i])
                _, b = px(s.xs[i], s.hi[i])
                draw.line([qx, a, qx, b], fill=s.color, width=1)
                draw.line([qx - 4, a, qx + 4, a], fill=s.color)
                draw.line([qx - 4, b, qx + 4, b], fill=s.color)
            if s.marker:
                draw.ellipse([qx - s.radius, qy - s.radius, qx + s.radius, qy + s.radius], fill=s.color)
            if i < len(s.names):
                draw.text((qx + 6, qy - 6), s.names[i], fill=s.color, font=small, anchor="lb")
    for i, s in enumerate(series):
        ly = top + 10 + i * 20
        draw.line([width - right + 15, ly, width - right + 40, ly], fill=s.color, width=2)
        draw.text((width - right + 46, ly), s.label, fill="black", font=small, anchor="lm")
    return image
