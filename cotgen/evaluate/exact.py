"""The exact evaluator: read a shapes-world image into objects, then apply GenEval's rules."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from cotgen.evaluate.reader import read_scene
from cotgen.evaluate.rules import check
from cotgen.prompts import Record
from cotgen.world.scene import Box, ShapeObject


@dataclass(frozen=True)
class Evaluation:
    """One image's verdict, why, and what the evaluator saw."""

    correct: bool
    reasons: tuple[str, ...]
    objects: tuple[ShapeObject, ...]
    blobs: tuple[Box, ...]


def evaluate_image(image: Image.Image, record: Record) -> Evaluation:
    reading = read_scene(image)
    verdict = check(reading.objects, record, reading.blobs)
    return Evaluation(verdict.correct, verdict.reasons, reading.objects, reading.blobs)
