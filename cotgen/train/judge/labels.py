"""ORM labels: the exact evaluator's verdict on an image against its own record and against others.

Besides its own prompt, a training image is asked about `swaps` other training-split records, half
chosen among those it satisfies (when there are any) and half among the nearest it does not (most
prompt words in common, same tag). That gives generated images "yes" answers too, and forces the
judge to read the prompt rather than to tell clean renders from generated images. Every question
names a training-split record: held-out combinations never reach a training question.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import numpy as np
from PIL import Image

from cotgen.evaluate.reader import Reading, read_scene
from cotgen.evaluate.rules import check
from cotgen.judge.prompts import JudgePrompts
from cotgen.prompts import TAGS, Record
from cotgen.train.judge.examples import Example
from cotgen.world.records import split_records


class Labeller:
    """The exact evaluator's verdict on (image, record): `evaluate_image` with the image read once,
    so that one image can be asked about many records."""

    def __init__(self, image: Image.Image):
        self.image = image
        self.reading: Reading = read_scene(image)
        self.classes = {o.cls for o in self.reading.objects}

    def verdict(self, record: Record):
        return check(self.reading.objects, record, self.reading.blobs)

    def could_satisfy(self, record: Record) -> bool:
        """False when a class the record asks for is absent (then it certainly fails)."""
        return all(c.cls in self.classes for c in record.include)


def orm_example(labeller: Labeller, record: Record, image_path: str, source: str, prompts: JudgePrompts) -> Example:
    verdict = labeller.verdict(record)
    return Example(
        image=image_path, question=prompts.orm.format(prompt=record.prompt), answer="yes" if verdict.correct else "no",
        tag=record.tag, prompt=record.prompt, task="orm", source=source, reasons=verdict.reasons,
    )  # fmt: skip


@lru_cache(maxsize=1)
def training_records() -> tuple[Record, ...]:
    """Every distinct training-split record, tags in order."""
    return tuple(r for tag in TAGS for r in split_records(tag, "train"))


def _overlap(a: str, b: str) -> int:
    return sum((Counter(a.split()) & Counter(b.split())).values())


def swap_examples(
    labeller: Labeller, own: Record, k: int, rng: np.random.Generator, image_path: str, source: str, prompts: JudgePrompts
) -> list[Example]:
    """k questions about the image naming other training records: alternately one it satisfies
    (of the same tag when there is one) and one of the nearest it does not (same tag, most prompt
    words in common, give or take one)."""
    others = [r for r in training_records() if r.prompt != own.prompt]
    satisfied = [r for r in others if labeller.could_satisfy(r) and labeller.verdict(r).correct]
    satisfied_prompts = {r.prompt for r in satisfied}
    satisfied = [r for r in satisfied if r.tag == own.tag] or satisfied  # same tag first: own-tag "yes" too
    failed = [r for r in others if r.tag == own.tag and r.prompt not in satisfied_prompts] or [
        r for r in others if r.prompt not in satisfied_prompts
    ]
    examples = []
    for i in range(k):
        pool = satisfied if i % 2 == 0 and satisfied else failed
        if pool is failed and failed:
            best = max(_overlap(own.prompt, r.prompt) for r in failed)
            pool = [r for r in failed if _overlap(own.prompt, r.prompt) >= best - 1]
        if not pool:
            continue
        record = pool[int(rng.integers(len(pool)))]
        examples.append(orm_example(labeller, record, image_path, source + "/swap", prompts))
    return examples
