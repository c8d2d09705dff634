"""GenEval's rules, applied to objects (read from an image, or taken from a scene as ground truth).

Semantics follow GenEval's `evaluate_images.py`:
- include clauses are ANDed: at least `count` objects of the class;
- colour and position are judged on the first `count` objects of the class in confidence order
  (here: largest box first, then top-to-bottom, left-to-right), and position only when the clause's
  class and colour already hold;
- a position clause needs every chosen object to stand in the relation to every object chosen for
  its target clause; a failed target fails the clause too;
- exclude clauses are ORed: `count` or more objects of the class fail the image.

Reasons are plain sentences ("expected 3 triangles, found 2"; "the circle is blue, expected red";
"the circle is not left of the square (it is above it)"): they are the ground-truth reflections.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cotgen.prompts import Record
from cotgen.world.scene import Box, ShapeObject, relations
from cotgen.world.vocab import plural, with_article


@dataclass(frozen=True)
class Verdict:
    correct: bool
    reasons: tuple[str, ...]


def _quantity(n: int, cls: str, color: str | None = None) -> str:
    noun = f"{color} {cls}" if color else cls
    if n == 1:
        return with_article(noun)
    return f"{n} {color + ' ' if color else ''}{plural(cls)}"


def _found(n: int) -> str:
    return "none" if n == 0 else str(n)


def confidence_order(objects: Iterable[ShapeObject]) -> list[ShapeObject]:
    """The order GenEval's detector confidence would give; largest first stands in for it."""
    return sorted(objects, key=lambda o: (-o.box.area, o.box.y0, o.box.x0))


def _color_reason(cls: str, count: int, color: str, chosen: list[ShapeObject]) -> str:
    if count == 1:
        return f"the {cls} is {chosen[0].color}, expected {color}"
    tally = Counter(o.color for o in chosen)
    others = ", ".join(f"{n} {c}" for c, n in sorted(tally.items()) if c != color)
    return f"expected {_quantity(count, cls, color)}, found {_found(tally[color])} {color}; the others are {others}"


Where = Callable[[ShapeObject, ShapeObject], "set[str] | None"]
"""The relations in which one object stands to another; None where they are not known (a reading
states only whether the prompt's relation holds)."""


def box_relations(obj: ShapeObject, target: ShapeObject) -> set[str]:
    return relations(obj.box, target.box)


def _position_reason(obj: ShapeObject, target: ShapeObject, relation: str, actual: set[str] | None) -> str:
    reason = f"the {obj.cls} is not {relation} the {target.cls}"
    if actual is None:
        return reason
    where = f"it is {' and '.join(sorted(actual))} it" if actual else "they are too close to tell"
    return f"{reason} ({where})"


def check(
    objects: Iterable[ShapeObject], record: Record, blobs: tuple[Box, ...] = (), ordered: bool = False,
    where: Where = box_relations,
) -> Verdict:  # fmt: skip
    """Judge objects against a record; `blobs` (unrecognised shapes) only add to the reasons.
    `ordered`: the objects already come in confidence order (a detector's scores), so keep it.
    `where`: how an object stands to another (by default, by their boxes)."""
    by_class: dict[str, list[ShapeObject]] = defaultdict(list)
    for obj in objects if ordered else confidence_order(objects):
        by_class[obj.cls].append(obj)
    reasons: list[str] = []
    matched: list[list[ShapeObject] | None] = []
    for clause in record.include:
        present = by_class[clause.cls]
        chosen = present[: clause.count]
        ok = len(chosen) == clause.count
        if not ok:
            reasons.append(f"expected {_quantity(clause.count, clause.cls)}, found {_found(len(present))}")
        elif clause.color is not None and sum(o.color == clause.color for o in chosen) < clause.count:
            ok = False
            reasons.append(_color_reason(clause.cls, clause.count, clause.color, chosen))
        if ok and clause.position is not None:
            relation, target = clause.position
            targets = matched[target]
            if targets is None:
                ok = False  # the target clause failed and already said why
            else:
                failures = [(obj, t) for obj in chosen for t in targets if relation not in (where(obj, t) or ())]
                if failures:
                    ok = False
                    reasons.append(_position_reason(*failures[0], relation, where(*failures[0])))
        matched.append(chosen if ok else None)
    correct = all(group is not None for group in matched)
    for clause in record.exclude:
        present = len(by_class[clause.cls])
        if present >= clause.count:
            correct = False
            exact = any(c.cls == clause.cls and c.count == clause.count - 1 for c in record.include)
            wanted = _quantity(clause.count - 1, clause.cls) if exact else f"fewer than {clause.count} {plural(clause.cls)}"
            reasons.append(f"expected {wanted}, found {present}")
    if not correct and blobs:
        reasons.append(f"{len(blobs)} unrecognisable shape{'s' if len(blobs) > 1 else ''} in the image")
    return Verdict(correct, tuple(reasons))
