"""Object-centric targets for the judge's vision stage: the world knows every scene, so each merged
visual token can be told the colour and shape of the object it shows."""

from __future__ import annotations

import numpy as np
import torch

from cotgen.train.judge.renders import degrade
from cotgen.world.records import sample_training_record
from cotgen.world.render import render, shape_mask
from cotgen.world.sampler import sample_random_scene, sample_scene
from cotgen.world.scene import Scene
from cotgen.world.vocab import COLORS, SHAPES

CELL_COLORS = ("none", *COLORS)
CELL_SHAPES = ("none", *SHAPES)


def cell_targets(scene: Scene, cells: int, min_cover: float = 0.08) -> tuple[list[int], list[int]]:
    """For each cell of a `cells`×`cells` grid (row-major, as the judge's merged visual tokens are
    ordered): the index in CELL_COLORS and CELL_SHAPES of the object owning most of the cell's
    object pixels, or "none" (0) when objects cover less than `min_cover` of the cell."""
    owner = np.full((scene.size, scene.size), -1)
    for k, obj in enumerate(scene.objects):
        b = obj.box
        owner[b.y0 : b.y1, b.x0 : b.x1][shape_mask(obj.cls, b.width, b.height)] = k
    side = scene.size // cells
    colors, shapes = [], []
    for cy in range(cells):
        for cx in range(cells):
            block = owner[cy * side : (cy + 1) * side, cx * side : (cx + 1) * side]
            covered = block[block >= 0]
            if len(covered) < min_cover * side * side:
                colors.append(0)
                shapes.append(0)
                continue
            obj = scene.objects[int(np.bincount(covered).argmax())]
            colors.append(CELL_COLORS.index(obj.color))
            shapes.append(CELL_SHAPES.index(obj.cls))
    return colors, shapes


def cell_batch(n: int, cells: int, rng: np.random.Generator, random_rate: float = 0.3, degrade_rate: float = 0.3):
    """n rendered scenes (training-split records, or prompt-free random scenes at `random_rate`;
    degraded at `degrade_rate`) with their per-cell colour and shape targets, (n·cells²,) each."""
    images, colors, shapes = [], [], []
    for _ in range(n):
        scene = sample_random_scene(rng) if rng.random() < random_rate else sample_scene(sample_training_record(rng), rng)
        c, k = cell_targets(scene, cells)
        images.append(degrade(render(scene), degrade_rate, rng))
        colors += c
        shapes += k
    return images, torch.tensor(colors), torch.tensor(shapes)
