"""Read an image of the shapes world back into objects: segment by colour, classify by shape.

1. Candidate regions: 8-connected components of the pixels far from the white canvas
   (RGB distance > FOREGROUND_DISTANCE, well above noise and compression ringing).
2. Colour: the palette colour nearest to the median of the region's strongest pixels (those at
   least 60 % as far from white as the farthest), so blurred or ringing edges do not vote.
3. Mask: the pixels more than halfway from white towards that colour. Measuring "halfway" along
   each colour's own axis keeps the outline where it was drawn whatever the contrast: yellow on
   white is as sharp as blue on white.
4. Shape: the class whose template, drawn in the mask's bounding box, overlaps the mask best (IoU).
   A mask whose box is not roughly square, is far outside the world's object sizes, or matches no
   template well is an unrecognised blob, not an object: two merged shapes read as a blob, so they
   never count as the objects they were meant to be. Specks smaller than a quarter of the smallest
   object's box are noise and are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from cotgen.world.render import shape_mask
from cotgen.world.scene import Box, ShapeObject
from cotgen.world.vocab import BACKGROUND, PALETTE, SHAPES, size_range

FOREGROUND_DISTANCE = 60.0  # every palette colour is ≥ 200 from white; ±10 jitter moves a pixel ≤ 17
CORE_FRACTION = 0.6
MIN_TEMPLATE_IOU = 0.72  # lowest IoU to accept a shape (clean renders score 1.0; rivals ≤ 0.79 on square/circle)
SIZE_TOLERANCE = 0.25  # accepted object sides: [min·(1−tol), max·(1+tol)]
ASPECT_TOLERANCE = 0.2  # |width − height| ≤ max(2 px, tol · side)

_PALETTE_NAMES = tuple(PALETTE)
_PALETTE_RGB = np.array([PALETTE[name] for name in _PALETTE_NAMES], dtype=np.float32)
_BACKGROUND = np.array(BACKGROUND, dtype=np.float32)


@dataclass(frozen=True)
class Reading:
    """What the evaluator saw: recognised objects and the foreground blobs it could not name."""

    objects: tuple[ShapeObject, ...]
    blobs: tuple[Box, ...]


def label_components(mask: np.ndarray) -> np.ndarray:
    """8-connected component labels of a boolean mask (background = -1), by min-label propagation."""
    h, w = mask.shape
    none = h * w
    labels = np.where(mask, np.arange(h * w).reshape(h, w), none)
    while True:
        padded = np.pad(labels, 1, constant_values=none)
        neighbourhood = np.min(
            [padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0
        )
        updated = np.where(mask, neighbourhood, none)
        if np.array_equal(updated, labels):
            break
        # Jump along the label chain too, so long components converge in few passes.
        flat = np.append(updated.ravel(), none)
        labels = np.where(mask, flat[updated], none)
    return np.where(mask, labels, -1)


def _classify_shape(mask: np.ndarray, min_side: int, max_side: int) -> str | None:
    h, w = mask.shape
    side = max(h, w)
    if side < min_side * (1 - SIZE_TOLERANCE) or side > max_side * (1 + SIZE_TOLERANCE):
        return None
    if abs(h - w) > max(2, ASPECT_TOLERANCE * side):
        return None
    best, best_iou = None, MIN_TEMPLATE_IOU
    for cls in SHAPES:
        template = shape_mask(cls, w, h)
        iou = np.logical_and(mask, template).sum() / np.logical_or(mask, template).sum()
        if iou >= best_iou:
            best, best_iou = cls, iou
    return best


def _region_color(pixels: np.ndarray, distance: np.ndarray) -> str:
    core = pixels[distance >= CORE_FRACTION * distance.max()]
    median = np.median(core, axis=0)
    return _PALETTE_NAMES[int(np.argmin(np.linalg.norm(_PALETTE_RGB - median, axis=1)))]


def read_scene(image: Image.Image) -> Reading:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    min_side, max_side = size_range(min(pixels.shape[:2]))
    from_white = pixels - _BACKGROUND
    distance = np.linalg.norm(from_white, axis=2)
    labels = label_components(distance > FOREGROUND_DISTANCE)
    objects, blobs = [], []
    for label in np.unique(labels[labels >= 0]):
        region = labels == label
        color = _region_color(pixels[region], distance[region])
        axis = _PALETTE_RGB[_PALETTE_NAMES.index(color)] - _BACKGROUND
        mask = region & ((from_white @ axis) / (axis @ axis) > 0.5)
        if mask.sum() < (min_side / 2) ** 2:
            continue
        ys, xs = np.nonzero(mask)
        box = Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        cls = _classify_shape(mask[box.y0 : box.y1, box.x0 : box.x1], min_side, max_side)
        if cls is None:
            blobs.append(box)
        else:
            objects.append(ShapeObject(cls, color, box))
    return Reading(tuple(objects), tuple(blobs))
