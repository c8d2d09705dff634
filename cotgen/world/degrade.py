"""Image degradations that mimic what a VQ tokenizer and a generator do to a clean render.

Used to measure how robust the exact evaluator is; each takes and returns an RGB PIL image.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

from cotgen.world.vocab import BACKGROUND


def blur(image: Image.Image, rng: np.random.Generator, radius: float = 0.8) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def jpeg(image: Image.Image, rng: np.random.Generator, quality: int = 50) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(buffer).convert("RGB")


def jitter(image: Image.Image, rng: np.random.Generator, amount: int = 10) -> Image.Image:
    """Independent uniform noise in [-amount, amount] on every channel of every pixel."""
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-amount, amount + 1, size=(*image.size[::-1], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def shift(image: Image.Image, rng: np.random.Generator, pixels: int = 1) -> Image.Image:
    """Move the whole picture by up to `pixels` in x and y (not both zero), filling with background."""
    dx, dy = 0, 0
    while dx == dy == 0:
        dx, dy = (int(v) for v in rng.integers(-pixels, pixels + 1, size=2))
    out = Image.new("RGB", image.size, BACKGROUND)
    out.paste(image, (dx, dy))
    return out


def vq_like(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """All four at once: the harshest case."""
    for step in (shift, blur, jitter, jpeg):
        image = step(image, rng)
    return image


DEGRADATIONS: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "blur": blur,
    "jpeg50": jpeg,
    "jitter10": jitter,
    "shift1": shift,
    "all": vq_like,
}
