"""Census examples on renders of prompt-free scenes (`sample_count_scene`): every class at every
count, so the census learns counts the training-split records' images never show (their classes
come in a few combinations per count; the held-out split's in others)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from cotgen.evaluate.reader import read_scene
from cotgen.train.judge.examples import Example, ExampleSet
from cotgen.train.judge.reading import CENSUS_QUESTION, census_text
from cotgen.train.judge.renders import degrade
from cotgen.world.perturb import merge_two
from cotgen.world.render import render
from cotgen.world.sampler import sample_count_scene


def build_census_scenes(folder: Path, n: int, seed: int, degrade_rate: float, merges: float = 0.0) -> Iterator[Example]:
    """n renders of count scenes, some degraded like a generator's output and, with chance `merges`,
    two of their objects merged into a blob (`merge_two`), each asked the census question and
    answered as the evaluator reads the image."""
    for i in range(n):
        rng = np.random.default_rng([seed, 5, i])
        scene = sample_count_scene(rng)
        if merges and len(scene.objects) > 1 and rng.random() < merges:  # no draw without merges: the same scenes as before
            scene = merge_two(scene, rng)[0]
        image = degrade(render(scene), degrade_rate, rng)
        path = f"images/{i:06d}.png"
        image.save(folder / path)
        yield Example(path, CENSUS_QUESTION, census_text(read_scene(image)), "census", "", task="census", source="scene")


def draw_census_batch(
    side: Sequence[tuple[ExampleSet, Example]], scenes: ExampleSet | None, share: float, rng: np.random.Generator
) -> list[tuple[ExampleSet, Example]]:
    """A census batch: each of the `side` draws (images drawn as the reflections' are) replaced, with
    chance `share`, by a uniform draw from the count scenes (none: the side draws as they are)."""
    if scenes is None or not share:
        return list(side)
    return [(scenes, scenes.examples[int(rng.integers(len(scenes)))]) if rng.random() < share else pair for pair in side]
