"""Rendering: each shape is a binary mask filling its box exactly, painted onto a plain canvas.

The same masks serve as the evaluator's templates, so a clean render reads back exactly.
Shapes are drawn without anti-aliasing: every pixel is either the object's colour or background.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from cotgen.world.scene import Scene
from cotgen.world.vocab import BACKGROUND, PALETTE, SHAPES


@lru_cache(maxsize=4096)
def shape_mask(cls: str, width: int, height: int) -> np.ndarray:
    """Boolean (height, width) mask of `cls` whose bounding box is the whole array."""
    if cls not in SHAPES:
        raise ValueError(f"unknown shape {cls!r} (expected one of {', '.join(SHAPES)})")
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    right, bottom = width - 1, height - 1
    mid_x, mid_y = right / 2, bottom / 2
    if cls == "circle":
        draw.ellipse([0, 0, right, bottom], fill=1)
    elif cls == "square":
        draw.rectangle([0, 0, right, bottom], fill=1)
    elif cls == "triangle":
        draw.polygon([(mid_x, 0), (right, bottom), (0, bottom)], fill=1)
    elif cls == "diamond":
        draw.polygon([(mid_x, 0), (right, mid_y), (mid_x, bottom), (0, mid_y)], fill=1)
    else:  # cross: two bars a third of the box thick
        bar_w, bar_h = max(1, round(width / 3)), max(1, round(height / 3))
        left, top = (width - bar_w) // 2, (height - bar_h) // 2
        draw.rectangle([left, 0, left + bar_w - 1, bottom], fill=1)
        draw.rectangle([0, top, right, top + bar_h - 1], fill=1)
    mask = np.asarray(canvas, dtype=bool)
    mask.setflags(write=False)
    return mask


def render_array(scene: Scene) -> np.ndarray:
    """The scene as a (size, size, 3) uint8 array; later objects paint over earlier ones."""
    pixels = np.empty((scene.size, scene.size, 3), dtype=np.uint8)
    pixels[:] = BACKGROUND
    for obj in scene.objects:
        b = obj.box
        region = pixels[b.y0 : b.y1, b.x0 : b.x1]
        region[shape_mask(obj.cls, b.width, b.height)] = PALETTE[obj.color]
    return pixels


def render(scene: Scene) -> Image.Image:
    return Image.fromarray(render_array(scene), mode="RGB")
