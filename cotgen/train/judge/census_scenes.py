"""Census examples on renders of prompt-free scenes (`sample_count_scene`): every class at every
count, so the census learns counts the training-split records' images never show (their classes
come in a few combinations per count; the held-out split's in others). Beside them, optionally, the
generator's own images of training-split counting records (`counting_images`): its blobs, as it
draws them, where the census learns to count."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cotgen.evaluate.reader import read_scene
from cotgen.prompts import Record
from cotgen.train.judge.examples import Example, ExampleSet
from cotgen.train.judge.generated import generated
from cotgen.train.judge.reading import CENSUS_QUESTION, census_text
from cotgen.train.judge.renders import degrade
from cotgen.world.perturb import merge_two
from cotgen.world.records import is_judge_validation, split_records
from cotgen.world.render import render, render_array, shape_mask
from cotgen.world.sampler import sample_count_scene
from cotgen.world.scene import Box, Scene, ShapeObject
from cotgen.world.vocab import COLORS, PALETTE

SPOILS = ("cut", "two-coloured", "merged")
"""How the generator spoils an object into a shape the evaluator cannot name (its blobs on held-out
counting images): cut by the frame's edge, painted in two colours, or run into another object."""


def spoilt(scene: Scene, rng: np.random.Generator) -> Image.Image:
    """The scene rendered with one object spoilt in one of the `SPOILS` ways (a lone object is cut or
    two-coloured): the image may still read as the scene, the census's label is the evaluator's."""
    kind = SPOILS[int(rng.integers(len(SPOILS) if len(scene.objects) > 1 else len(SPOILS) - 1))]
    if kind == "merged":
        return render(merge_two(scene, rng)[0])
    i = int(rng.integers(len(scene.objects)))
    return _two_coloured(scene, i, rng) if kind == "two-coloured" else _cut(scene, i, rng)


def _two_coloured(scene: Scene, i: int, rng: np.random.Generator) -> Image.Image:
    """Object i's lower part (below a third to two thirds of its height) in another colour."""
    obj, b = scene.objects[i], scene.objects[i].box
    pixels = render_array(scene)
    mask = shape_mask(obj.cls, b.width, b.height).copy()
    mask[: int(rng.integers(b.height // 3, 2 * b.height // 3 + 1))] = False
    other = [c for c in COLORS if c != obj.color]
    pixels[b.y0 : b.y1, b.x0 : b.x1][mask] = PALETTE[other[int(rng.integers(len(other)))]]
    return Image.fromarray(pixels, mode="RGB")


def _cut(scene: Scene, i: int, rng: np.random.Generator) -> Image.Image:
    """Object i moved across one edge of the frame, 30–60 % of it outside: drawn on a canvas with a
    margin (the renderer draws whole boxes), cropped back to the frame."""
    obj, b, size = scene.objects[i], scene.objects[i].box, scene.size
    m = size // 2
    outside = rng.uniform(0.3, 0.6)
    x0, y0 = b.x0 + m, b.y0 + m
    edge = int(rng.integers(4))  # left, right, top, bottom
    if edge == 0:
        x0 = m - round(outside * b.width)
    elif edge == 1:
        x0 = m + size - round((1 - outside) * b.width)
    elif edge == 2:
        y0 = m - round(outside * b.height)
    else:
        y0 = m + size - round((1 - outside) * b.height)
    moved = [ShapeObject(o.cls, o.color, Box(o.box.x0 + m, o.box.y0 + m, o.box.x1 + m, o.box.y1 + m)) for o in scene.objects]
    moved[i] = ShapeObject(obj.cls, obj.color, Box(x0, y0, x0 + b.width, y0 + b.height))
    return render(Scene(size + 2 * m, tuple(moved))).crop((m, m, m + size, m + size))


def build_census_scenes(folder: Path, n: int, seed: int, degrade_rate: float, spoil_rate: float = 0.0) -> Iterator[Example]:
    """n renders of count scenes, some degraded like a generator's output and, with chance
    `spoil_rate`, one object `spoilt`, each asked the census question and answered as the evaluator
    reads the image."""
    for i in range(n):
        rng = np.random.default_rng([seed, 5, i])
        scene = sample_count_scene(rng)
        # no draw without spoils: the same scenes as before
        image = spoilt(scene, rng) if spoil_rate and rng.random() < spoil_rate else render(scene)
        image = degrade(image, degrade_rate, rng)
        path = f"images/{i:06d}.png"
        image.save(folder / path)
        yield Example(path, CENSUS_QUESTION, census_text(read_scene(image)), "census", "", task="census", source="scene")


def counting_records(compositional: bool = False) -> list[Record]:
    """The training-split counting records; without those naming a judge-validation count when
    `compositional` (a judge that must not read them, `data.compositional`)."""
    return [r for r in split_records("counting", "train") if not (compositional and is_judge_validation(r))]


def counting_images(
    folder: Path, n: int, seed: int, generator: str, batch: int, progress: bool = False, compositional: bool = False
) -> Iterator[Example]:
    """n generator images of the `counting_records` (in turn), each asked the census question and
    answered as the evaluator reads it; their path keys are drawn apart from the generated set's
    (another seed from `seed`)."""
    records = counting_records(compositional)
    key = int(np.random.default_rng([seed, 14]).integers(2**31))
    for i, _, image in generated([records[i % len(records)] for i in range(n)], 1, key, generator, batch, progress):
        path = f"images/{i:06d}.png"
        image.save(folder / path)
        yield Example(path, CENSUS_QUESTION, census_text(read_scene(image)), "census", "", task="census", source="counting")


def draw_census_batch(
    side: Sequence[tuple[ExampleSet, Example]], pools: Sequence[ExampleSet], share: float, rng: np.random.Generator
) -> list[tuple[ExampleSet, Example]]:
    """A census batch: each of the `side` draws (images drawn as the reflections' are) replaced, with
    chance `share`, by a uniform draw from the pools' examples together (the count scenes, the
    generator's counting images; none: the side draws as they are)."""
    total = sum(len(pool) for pool in pools)
    if not total or not share:
        return list(side)

    def pick(k: int) -> tuple[ExampleSet, Example]:
        for pool in pools:
            if k < len(pool):
                return pool, pool.examples[k]
            k -= len(pool)
        raise IndexError(k)

    return [pick(int(rng.integers(total))) if rng.random() < share else pair for pair in side]
