"""How far the exact evaluator can be trusted: agreement with the scenes it was shown.

Ground truth is GenEval's rules applied to the scene's own objects; the evaluator sees only the
rendered (optionally degraded) image. Shared by the tests (small samples) and bench/ (full counts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cotgen.evaluate.reader import read_scene
from cotgen.evaluate.rules import check
from cotgen.world.degrade import DEGRADATIONS
from cotgen.world.perturb import break_scene, near_miss, random_record
from cotgen.world.render import render
from cotgen.world.sampler import sample_scene


@dataclass(frozen=True)
class Agreement:
    scenes: int
    positives: int  # scenes that truly satisfy their record
    verdicts_agree: int
    objects_agree: int  # clean: every object read back exactly (class, colour, box); degraded: class and colour

    @property
    def verdict_rate(self) -> float:
        return self.verdicts_agree / self.scenes

    @property
    def object_rate(self) -> float:
        return self.objects_agree / self.scenes


@dataclass(frozen=True)
class FalseCorrect:
    scenes: int  # broken scenes, all truly incorrect
    false_correct: int  # of those, judged correct by the evaluator

    @property
    def rate(self) -> float:
        return self.false_correct / self.scenes


def _degrade(image, degradation: str | None, rng: np.random.Generator):
    return DEGRADATIONS[degradation](image, rng) if degradation else image


def measure_agreement(n: int, seed: int = 0, degradation: str | None = None) -> Agreement:
    """n random scenes, half satisfying a random record and half a near miss of it."""
    positives = verdicts = objects = 0
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        record = random_record(rng)
        scene = sample_scene(record, rng)
        if rng.random() < 0.5:
            scene = near_miss(scene, rng)
        reading = read_scene(_degrade(render(scene), degradation, rng))
        truth = check(scene.objects, record).correct
        positives += truth
        verdicts += truth == check(reading.objects, record, reading.blobs).correct
        if degradation:
            objects += sorted((o.cls, o.color) for o in reading.objects) == sorted((o.cls, o.color) for o in scene.objects)
        else:
            objects += set(reading.objects) == set(scene.objects) and not reading.blobs
    return Agreement(n, positives, verdicts, objects)


def measure_false_correct(n: int, kind: str, seed: int = 0, degradation: str | None = None) -> FalseCorrect:
    """n scenes broken by `kind` (see cotgen.world.perturb.BREAKAGES) that truly fail their record."""
    scenes = false_correct = 0
    i = 0
    while scenes < n:
        rng = np.random.default_rng([seed, i])
        i += 1
        record = random_record(rng)
        broken = break_scene(record, kind, rng)
        if broken is None:
            continue
        scene, present = broken
        if check(present, record).correct:
            continue  # the breakage happened not to matter for this record
        reading = read_scene(_degrade(render(scene), degradation, rng))
        scenes += 1
        false_correct += check(reading.objects, record, reading.blobs).correct
    return FalseCorrect(scenes, false_correct)
