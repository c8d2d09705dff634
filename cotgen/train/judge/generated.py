"""ORM examples on the generator's images: of training-split records (`generated`, asked about other
records too) and of the held-out evaluation records (`heldout`, their own prompt only: the judge's
test set)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cotgen.generate.factory import load_engine
from cotgen.generate.pipeline import generate_images
from cotgen.judge.prompts import JudgePrompts
from cotgen.prompts import Record
from cotgen.train.judge.examples import Example, spread
from cotgen.train.judge.labels import Labeller, orm_example, swap_examples
from cotgen.world.records import evaluation_records, judge_validation_records, sample_training_record


def generated(
    records: Sequence[Record], samples: int, seed: int, generator: str, batch: int, progress: bool = False
) -> Iterator[tuple[int, int, Image.Image]]:
    """(record index, sample index, image) from the generator at its own default sampling,
    reproducible from `seed`."""
    engine, tokenizer = load_engine(generator)
    with torch.no_grad():
        yield from generate_images(engine, tokenizer, records, samples, seed, batch_size=batch, progress=progress)


def heldout_records(n: int = 0) -> list[Record]:
    """The held-out evaluation records, or `n` of them spread evenly over the 553 (tags in order)."""
    return spread(evaluation_records(), n)


def build_generated(
    folder: Path, n: int, seed: int, swaps: int, generator: str, batch: int, prompts: JudgePrompts, progress: bool
) -> Iterator[Example]:
    """ORM examples on the generator's images of n training-split records."""
    rng = np.random.default_rng([seed, 2])
    records = [sample_training_record(rng) for _ in range(n)]
    for i, _, image in generated(records, 1, seed, generator, batch, progress):
        path = f"images/{i:06d}.png"
        image.save(folder / path)
        labeller = Labeller(image)
        yield orm_example(labeller, records[i], path, "generated", prompts)
        yield from swap_examples(labeller, records[i], swaps, np.random.default_rng([seed, 3, i]), path, "generated", prompts)


def build_heldout(
    folder: Path, records: Sequence[Record], samples: int, seed: int, generator: str, batch: int, prompts: JudgePrompts, progress: bool,
    source: str = "heldout",
) -> Iterator[Example]:  # fmt: skip
    """One ORM example per generated image of each record (its own prompt only)."""
    for i, j, image in generated(records, samples, seed, generator, batch, progress):
        path = f"images/{i:04d}_{j:02d}.png"
        image.save(folder / path)
        yield orm_example(Labeller(image), records[i], path, source, prompts)


def compositional_validation_records(n: int, seed: int) -> list[Record]:
    """n records naming a judge-validation combination, spread over the tags that have them (each
    tag's distinct records in a seeded order, repeated as needed), tags in order."""
    pool = judge_validation_records()
    tags = list(dict.fromkeys(r.tag for r in pool))
    rng = np.random.default_rng([seed, 13])
    records = []
    for k, tag in enumerate(tags):
        mine = [r for r in pool if r.tag == tag]
        share = n // len(tags) + (k < n % len(tags))
        records += [mine[i % len(mine)] for i in rng.permutation(max(share, len(mine)))[:share]]
    return records


def validation_records(n: int, seed: int) -> list[Record]:
    """n training-split records drawn apart from those of `build_generated` (their own stream)."""
    rng = np.random.default_rng([seed, 12])
    return [sample_training_record(rng) for _ in range(n)]
