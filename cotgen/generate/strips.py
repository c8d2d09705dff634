"""Step-by-step strips: a path's partial images side by side, like the paper's Figure 2."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image


def step_strip(frames: Sequence[Image.Image], scale: int = 2, gap: int = 4, background: str = "#808080") -> Image.Image:
    """Frames left to right, each enlarged `scale`× (nearest neighbour, so tokens stay crisp)."""
    width, height = frames[0].size
    w, h = width * scale, height * scale
    strip = Image.new("RGB", (len(frames) * w + (len(frames) - 1) * gap, h), background)
    for i, frame in enumerate(frames):
        strip.paste(frame.resize((w, h), Image.NEAREST), (i * (w + gap), 0))
    return strip
