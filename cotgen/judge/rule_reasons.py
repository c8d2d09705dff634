"""A reading judge's reflection by rule: what it read, compared with the prompt by the evaluator's rules.

A reading states the facts the evaluator checks ("circle: 2, red, blue; square: none" or, for a
position prompt, "...; circle is not left of square"). Where the judge's answer after its reading is
"no", the reasons PARM++ feeds back to the generator are the differences between those facts and
the prompt's record, in the evaluator's own sentences (`cotgen.evaluate.rules.check`): "expected 2
circles, found 1". The judge then reflects on what it saw; it does not also have to learn to phrase
it. A reading says whether a relation holds but not where the objects stand, so a position reason
names the failed relation without the evaluator's "(it is above it)".
"""

from __future__ import annotations

from functools import lru_cache

from cotgen.evaluate.rules import check
from cotgen.judge.skeleton import census_facts
from cotgen.prompts import Record
from cotgen.world.records import records_by_prompt
from cotgen.world.scene import Box, ShapeObject
from cotgen.world.vocab import SHAPES

UNKNOWN_COLOR = "unknown"
"""The colour of an object a reading counts without naming its colour."""
_SOMEWHERE = Box(0, 0, 1, 1)
"""Every object read gets this box: a reading states no geometry, and its order is kept (`ordered`)."""


@lru_cache(maxsize=4096)  # a sweep asks the same few questions of every candidate
def prompt_record(question: str) -> Record | None:
    """The world's record whose prompt the question quotes (the longest one it holds), or None."""
    named = [prompt for prompt in records_by_prompt() if prompt in question]
    return records_by_prompt()[max(named, key=len)] if named else None


def numbered_classes(question: str) -> set[str]:
    """The classes the prompt a question quotes asks two or more of (none for other questions)."""
    record = prompt_record(question)
    return {c.cls for c in record.include if c.count > 1} if record else set()


def read_facts(reading: str) -> tuple[list[ShapeObject], dict[tuple[str, str], tuple[str, bool]]]:
    """The objects a reading states, in its order, and its relations: (subject, reference) →
    (relation, whether it holds). Parts it cannot parse are skipped."""
    objects: list[ShapeObject] = []
    for cls, facts in census_facts(reading, SHAPES).items():
        count, *colors = (word.strip() for word in facts.split(","))
        if count.isdigit():
            colors += [UNKNOWN_COLOR] * int(count)
            objects += [ShapeObject(cls, colors[k], _SOMEWHERE) for k in range(int(count))]
    stated: dict[tuple[str, str], tuple[str, bool]] = {}
    for part in reading.strip().rstrip(".").split(";"):
        subject, is_, rest = part.strip().partition(" is ")
        relation, _, reference = rest.removeprefix("not ").rpartition(" ")
        if is_ and ":" not in part and relation:
            stated[(subject, reference)] = (relation, not rest.startswith("not "))
    return objects, stated


def rule_reasons(reading: str, record: Record) -> tuple[str, ...]:
    """The evaluator's reasons against `record` for the facts of `reading` (the text before its marker)."""
    objects, stated = read_facts(reading)

    def where(obj: ShapeObject, target: ShapeObject) -> set[str] | None:
        relation, holds = stated.get((obj.cls, target.cls), ("", False))
        return {relation} if holds else None  # not holding, or not stated: where they stand is unknown

    return check(objects, record, ordered=True, where=where).reasons


def rule_holds(reading: str, record: Record) -> bool:
    """The evaluator's verdict on the facts of `reading`: whether they give it no reason."""
    return not rule_reasons(reading, record)
