"""ORM examples on rendered training-split scenes: clean renders and, for every other one, a broken
scene (`perturb.near_miss` or `perturb.break_scene`), some degraded like a generator's output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from cotgen.judge.prompts import JudgePrompts
from cotgen.prompts import Record
from cotgen.train.judge.examples import Example
from cotgen.train.judge.labels import Labeller, orm_example, swap_examples
from cotgen.world.degrade import DEGRADATIONS
from cotgen.world.perturb import broken_image
from cotgen.world.records import sample_training_record
from cotgen.world.render import render
from cotgen.world.sampler import sample_scene


def degrade(image: Image.Image, rate: float, rng: np.random.Generator) -> Image.Image:
    """With probability `rate`, the image through a random `cotgen.world.degrade` degradation."""
    if rng.random() < rate:
        names = sorted(DEGRADATIONS)
        image = DEGRADATIONS[names[int(rng.integers(len(names)))]](image, rng)
    return image


def render_image(record: Record, broken: bool, degrade_rate: float, rng: np.random.Generator) -> Image.Image:
    return degrade(broken_image(record, rng) if broken else render(sample_scene(record, rng)), degrade_rate, rng)


def build_renders(folder: Path, n: int, seed: int, degrade_rate: float, swaps: int, prompts: JudgePrompts) -> Iterator[Example]:
    """ORM examples on n rendered training-split scenes; odd-numbered ones broken."""
    for i in range(n):
        rng = np.random.default_rng([seed, 1, i])
        record = sample_training_record(rng)
        broken = i % 2 == 1
        image = render_image(record, broken, degrade_rate, rng)
        path = f"images/{i:06d}.png"
        image.save(folder / path)
        labeller = Labeller(image)
        source = "broken" if broken else "render"
        yield orm_example(labeller, record, path, source, prompts)
        yield from swap_examples(labeller, record, swaps, rng, path, source, prompts)
