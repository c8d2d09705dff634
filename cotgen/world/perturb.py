"""Scenes that miss their prompt: near misses (for balanced test sets) and deliberate breakages.

Breakages are the generator failures that would flatter it if the evaluator missed them:
an object missing, two objects merged into one, an object recoloured.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from cotgen.prompts import TAGS, Record
from cotgen.world.records import all_records
from cotgen.world.render import render
from cotgen.world.sampler import place_objects, sample_scene
from cotgen.world.scene import Box, Scene, ShapeObject
from cotgen.world.vocab import COLORS, SHAPES

BREAKAGES = ("missing", "merged", "recoloured")


def random_record(rng: np.random.Generator) -> Record:
    """Any record of the world, from either split, tag chosen uniformly."""
    records = all_records(TAGS[int(rng.integers(len(TAGS)))])
    return records[int(rng.integers(len(records)))]


def _other(options: tuple[str, ...], current: str, rng: np.random.Generator) -> str:
    choices = [o for o in options if o != current]
    return choices[int(rng.integers(len(choices)))]


def near_miss(scene: Scene, rng: np.random.Generator) -> Scene:
    """The scene with one random edit (drop, add, recolour or reshape an object), laid out afresh."""
    specs = [(o.cls, o.color) for o in scene.objects]
    edit = int(rng.integers(4))
    i = int(rng.integers(len(specs)))
    if edit == 0 and len(specs) > 1:
        specs.pop(i)
    elif edit == 1 and len(specs) < 4:
        specs.append((SHAPES[int(rng.integers(len(SHAPES)))], COLORS[int(rng.integers(len(COLORS)))]))
    elif edit == 2:
        specs[i] = (specs[i][0], _other(COLORS, specs[i][1], rng))
    else:
        specs[i] = (_other(SHAPES, specs[i][0], rng), specs[i][1])
    return Scene(scene.size, place_objects(specs, rng, scene.size))


def merge_two(scene: Scene, rng: np.random.Generator) -> tuple[Scene, tuple[ShapeObject, ...]]:
    """Move one object onto another so that they overlap by 40–60 % of a side; returns the scene and
    the objects that are still whole."""
    i, j = (int(v) for v in rng.choice(len(scene.objects), size=2, replace=False))
    a, b = scene.objects[i], scene.objects[j]
    angle = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(0.4, 0.6) * (a.box.width + b.box.width) / 2
    cx = (a.box.x0 + a.box.x1) / 2 + distance * np.cos(angle)
    cy = (a.box.y0 + a.box.y1) / 2 + distance * np.sin(angle)
    side = b.box.width
    x0 = int(np.clip(round(cx - side / 2), 0, scene.size - side))
    y0 = int(np.clip(round(cy - side / 2), 0, scene.size - side))
    moved = ShapeObject(b.cls, b.color, Box(x0, y0, x0 + side, y0 + side))
    whole = tuple(o for k, o in enumerate(scene.objects) if k not in (i, j))
    return Scene(scene.size, (*whole, a, moved)), whole


def break_scene(record: Record, kind: str, rng: np.random.Generator, size: int = 64) -> tuple[Scene, tuple[ShapeObject, ...]] | None:
    """A scene for `record` broken by `kind`, and the objects that are truly present afterwards
    (merged objects are not). None when the breakage cannot apply (merging a single object;
    recolouring where the prompt names no colour)."""
    scene = sample_scene(record, rng, size)
    objects = scene.objects
    if kind == "missing":
        i = int(rng.integers(len(objects)))
        kept = objects[:i] + objects[i + 1 :]
        return Scene(size, kept), kept
    if kind == "merged":
        return merge_two(scene, rng) if len(objects) > 1 else None
    if kind == "recoloured":
        coloured = [i for i, o in enumerate(objects) if any(c.cls == o.cls and c.color for c in record.include)]
        if not coloured:
            return None
        i = coloured[int(rng.integers(len(coloured)))]
        obj = objects[i]
        changed = objects[:i] + (ShapeObject(obj.cls, _other(COLORS, obj.color, rng), obj.box),) + objects[i + 1 :]
        return Scene(size, changed), changed
    raise ValueError(f"unknown breakage {kind!r} (expected one of {', '.join(BREAKAGES)})")


def broken_image(record: Record, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """A scene for `record` edited by `near_miss` or one of `break_scene`'s breakages (it may still
    satisfy the record: the label comes from the evaluator)."""
    choice = int(rng.integers(len(BREAKAGES) + 1))
    if choice < len(BREAKAGES):
        broken = break_scene(record, BREAKAGES[choice], rng, size)
        if broken is not None:
            return render(broken[0])
    return render(near_miss(sample_scene(record, rng, size), rng))
