"""The report's plots: series drawn where their values put them, at the size asked."""

import math

import numpy as np

from cotgen.report.plot import Series, plot

RED, BLUE = "#d62728", "#1f77b4"


def rows_of(image, color: str) -> np.ndarray:
    """Pixel rows where `color` appears inside the axes (the legend is on the right, beyond 70 %)."""
    rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
    pixels = np.asarray(image)[:, : int(image.width * 0.7)]
    return np.nonzero((pixels == rgb).all(axis=-1).any(axis=1))[0]


def test_values_are_drawn_where_they_lie_and_bars_span_their_interval():
    point = Series("point", [4], [0.3], RED, line=False)
    curve = Series("curve", [1, 4, 16], [0.7, 0.8, 0.9], BLUE)
    image = plot([point, curve], "title", "N", "overall", size=(640, 400))
    assert image.size == (640, 400) and image.mode == "RGB"
    assert rows_of(image, BLUE).max() < rows_of(image, RED).min()  # 0.3 below the whole curve
    barred = Series("curve", [1, 4, 16], [0.7, 0.8, 0.9], BLUE, lo=[math.nan, 0.1, 0.85], hi=[math.nan, 0.95, 0.95])
    image = plot([point, barred], "title", "N", "overall", size=(640, 400))
    assert rows_of(image, BLUE).max() > rows_of(image, RED).max()  # the bar down to 0.1 passes below 0.3
