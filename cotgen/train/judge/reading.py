"""What the embedded judge learns to read before it answers (`cotgen.judge.reading` at inference).

For an outcome question the judge writes the facts the exact evaluator checks for that prompt, then
its answer: for each class the prompt names, how many the image holds and their colours in the
evaluator's confidence order (largest first), and for a position prompt whether the relation holds
between the first of each:

    "circle: 2, red, blue; square: 1, green; circle is not left of square. answer: no"
    "cross: none. answer: no"

Every word comes from the evaluator's reading of the image (`cotgen.evaluate.reader`), so the answer
after it is a short check, and what the judge must learn from pixels is the reading. The reading
names no coordinates: Qwen2-VL's visual tokens carry their position only through rotary attention,
as offsets, so a judge can tell that one object is left of another but hardly write where each is.
A reading never starts with "yes" or "no", so a reading judge's direct answers (clarity, potential,
reflections) stay told apart from its readings by their first token.

The vision stage's targets are the same facts per visual token: the colour and class of the object
whose centre falls in the token's cell, an unrecognised blob, or nothing (`centre_targets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cotgen.evaluate.reader import Reading
from cotgen.evaluate.rules import confidence_order
from cotgen.judge.reading import ReadingMode
from cotgen.prompts import RELATIONS, Record
from cotgen.world.scene import Box, ShapeObject, relations
from cotgen.world.vocab import COLORS, SHAPES

CENSUS_TOKENS = 72
"""The longest census in tokens: five classes, up to eight objects and their colours are about 50."""
MODE = ReadingMode(marker="answer:", max_tokens=48)
"""The embedded judge's reading mode: a long reading (two classes, four objects each, a relation) is
about 30 tokens."""
CENSUS_MODE = ReadingMode(marker=MODE.marker, max_tokens=CENSUS_TOKENS)
"""The reading mode of a judge that reads every class (`reading: census`)."""
READ_TASKS = ("orm", "prm")
"""The tasks asked the outcome question, which a reading judge reads before answering."""
CENSUS_QUESTION = "Which objects, counts and colors are in the image?"
"""The census question (training only, `census_share`): its answer is `census_text`. Every word is
in the judge's tokenizer corpus, so a judge's tokenizer need not change to learn it."""
CENTRE_CLASSES = ("none", "blob", *(f"{color} {cls}" for color in COLORS for cls in SHAPES))


def centre_cell(box: Box, cells: int, size: int) -> tuple[int, int]:
    """(column, row) of the box's centre on a `cells`×`cells` grid over a `size`-pixel canvas."""
    side = size / cells
    return int((box.x0 + box.x1) / 2 // side), int((box.y0 + box.y1) / 2 // side)


def reading_text(reading: Reading, record: Record, every_class: bool = False) -> str:
    """The facts the evaluator checks for `record`, as the judge writes them before its answer. With
    `every_class`, the counts of every class in the world's order (the census), whatever the prompt
    names, then the relation: a reading the prompt cannot suggest."""
    objects = confidence_order(reading.objects)
    first: dict[str, Box] = {}
    parts = []
    for cls in SHAPES if every_class else dict.fromkeys(c.cls for c in record.include):
        found = [o for o in objects if o.cls == cls]
        if found:
            first[cls] = found[0].box
        parts.append(class_text(cls, found))
    for clause in record.include:
        if clause.position is not None:
            relation, target = clause.position
            other = record.include[target].cls
            if clause.cls in first and other in first:
                holds = relation in relations(first[clause.cls], first[other])
                parts.append(f"{clause.cls} is {'' if holds else 'not '}{relation} {other}")
    return "; ".join(parts)


def class_text(cls: str, found: Sequence[ShapeObject]) -> str:
    """One class's part of a reading: "circle: 2, red, blue" for the objects found (in confidence
    order), or "circle: none"."""
    return f"{cls}: {len(found)}, {', '.join(o.color for o in found)}" if found else f"{cls}: none"


def census_text(reading: Reading) -> str:
    """Every class's part of a reading, in the world's order of shapes: what the census question is
    taught to answer, so that each image teaches the counts of all its objects, not only the prompt's."""
    objects = confidence_order(reading.objects)
    return "; ".join(class_text(cls, [o for o in objects if o.cls == cls]) for cls in SHAPES) + "."


def judge_mode(
    reads: bool, every_class: bool, census_turn: bool, skeleton: bool = False, copy_census: bool = False,
    rule_reasons: bool = False, rule_verdict: bool = False,
) -> ReadingMode | None:  # fmt: skip
    """How a judge trained with these settings reads (None: it answers directly): its reading's
    length, whether the question's words are forced into it (`skeleton`), whether it asks itself
    the census first (`census_history`), or copies its facts from its own census (`copying_census`),
    and whether it reflects and answers by the evaluator's rules on what it read (`cotgen.judge.rule_reasons`)."""
    if not reads:
        return None
    if copy_census:
        mode = copying_census(MODE)
    else:
        mode = CENSUS_MODE if every_class else with_skeleton(MODE) if skeleton else MODE
        mode = replace(mode, first=CENSUS_QUESTION, first_tokens=CENSUS_TOKENS) if census_turn else mode
    return replace(mode, rule_reasons=rule_reasons, rule_verdict=rule_verdict)


def with_skeleton(mode: ReadingMode) -> ReadingMode:
    """The mode with the world's classes and relations as its skeleton's words (`cotgen.judge.skeleton`):
    the judge then writes only the facts."""
    return replace(mode, subjects=SHAPES, relations=RELATIONS)


def copying_census(mode: ReadingMode) -> ReadingMode:
    """The mode of a census-trained judge that copies each class's facts from its own census into its
    reading (`first_facts`), writing only the relation and its answer."""
    return replace(with_skeleton(mode), first=CENSUS_QUESTION, first_tokens=CENSUS_TOKENS, first_facts=True)


def census_history(reading: Reading, history: Sequence[tuple[str, str]] = ()) -> tuple[tuple[str, str], ...]:
    """The chat before a question asked after the census: the census question and its true answer."""
    return ((CENSUS_QUESTION, census_text(reading)), *history)


def reading_target(reading: Reading, record: Record, answer: str, every_class: bool = False) -> str:
    """The whole answer the judge is taught for an outcome question: its reading, the marker, the answer."""
    return f"{reading_text(reading, record, every_class)}. {MODE.marker} {answer}"


def holds_facts(read: str, expected: str) -> bool:
    """Whether a reading states every fact of the expected one (a census reading states more)."""
    return set(expected.split("; ")) <= set(read.split("; "))


def centre_targets(reading: Reading, cells: int, size: int) -> list[int]:
    """For each cell (row-major, as the visual tokens are ordered): the index in CENTRE_CLASSES of the
    largest object centred there, else "blob" for an unrecognised shape centred there, else "none"."""
    targets = [0] * (cells * cells)
    for box in reading.blobs:
        x, y = centre_cell(box, cells, size)
        targets[y * cells + x] = 1
    for obj in sorted(reading.objects, key=lambda o: o.box.area):  # the largest is written last and wins
        x, y = centre_cell(obj.box, cells, size)
        targets[y * cells + x] = CENTRE_CLASSES.index(f"{obj.color} {obj.cls}")
    return targets
