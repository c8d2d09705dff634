"""Scenes: objects with a class, a colour and a box; and GenEval's relative-position rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# GenEval's `position_threshold`: centre offsets shrink by this fraction of the two boxes' sizes.
POSITION_THRESHOLD = 0.1


@dataclass(frozen=True)
class Box:
    """Pixel box; x1 and y1 are exclusive, so width = x1 - x0."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return self.width * self.height

    def gap(self, other: Box) -> int:
        """Chebyshev distance between the boxes in pixels (0 when they touch or overlap)."""
        dx = max(other.x0 - self.x1, self.x0 - other.x1, 0)
        dy = max(other.y0 - self.y1, self.y0 - other.y1, 0)
        return max(dx, dy)

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


@dataclass(frozen=True)
class ShapeObject:
    cls: str
    color: str
    box: Box


@dataclass(frozen=True)
class Scene:
    size: int
    objects: tuple[ShapeObject, ...]


def relations(a: Box, b: Box, slack: float = 0.0) -> set[str]:
    """Where `a` lies relative to `b`, by GenEval's rule (`relative_position` in its evaluator).

    The centre offset is shrunk by POSITION_THRESHOLD × (sum of the box sizes) per axis, then
    normalised by the unshrunk offset's length; a component beyond 0.5 names a relation. `slack`
    demands a clearer margin (0.5 + slack), which the scene sampler uses to stay off the boundary.
    """
    ca = np.array([a.x0 + a.x1, a.y0 + a.y1]) / 2
    cb = np.array([b.x0 + b.x1, b.y0 + b.y1]) / 2
    dims = np.array([a.width + b.width, a.height + b.height])
    offset = ca - cb
    revised = np.maximum(np.abs(offset) - POSITION_THRESHOLD * dims, 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    limit = 0.5 + slack
    found = set()
    if dx < -limit:
        found.add("left of")
    if dx > limit:
        found.add("right of")
    if dy < -limit:
        found.add("above")
    if dy > limit:
        found.add("below")
    return found
