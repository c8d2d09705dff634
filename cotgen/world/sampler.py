"""Scene sampler: a random scene that satisfies a GenEval record, reproducible from its seed.

A scene holds exactly the objects the record's include clauses ask for (no distractors): so a
counting prompt gets exactly its count, and every object matters to the verdict. Classes and colours
the record leaves open are drawn at random. Objects keep a clear gap between them and from the canvas
edge, and relative positions hold with a margin beyond GenEval's threshold, so small artefacts do not
flip a verdict.
"""

from __future__ import annotations

import numpy as np

from cotgen.errors import InputError
from cotgen.prompts import Record
from cotgen.world.scene import Box, Scene, ShapeObject, relations
from cotgen.world.vocab import COLORS, PALETTE, SHAPES, size_range

RELATION_SLACK = 0.15  # placed relations hold with |direction| > 0.65 instead of GenEval's 0.5
_ATTEMPTS = 500


def check_world_record(record: Record, where: str = "record") -> None:
    """Reject records the shapes world cannot depict, naming the offending field."""
    for field, clauses in (("include", record.include), ("exclude", record.exclude)):
        for i, clause in enumerate(clauses):
            if clause.cls not in SHAPES:
                raise InputError(
                    f"{where}: {field}[{i}].class: {clause.cls!r} is not a shapes-world class "
                    f"(expected one of {', '.join(SHAPES)})"
                )
            if clause.color is not None and clause.color not in PALETTE:
                raise InputError(
                    f"{where}: {field}[{i}].color: {clause.color!r} is not a shapes-world colour "
                    f"(expected one of {', '.join(COLORS)})"
                )


def _layout_params(size: int) -> tuple[int, int, int, int]:
    lo, hi = size_range(size)
    gap = max(2, round(size / 16))
    margin = max(1, round(size / 32))
    return lo, hi, gap, margin


def _place(rng: np.random.Generator, side: int, size: int, margin: int) -> Box:
    x0, y0 = rng.integers(margin, size - margin - side + 1, size=2)
    return Box(int(x0), int(y0), int(x0) + side, int(y0) + side)


def place_objects(
    specs: list[tuple[str, str]],
    rng: np.random.Generator,
    size: int,
    constraints: dict[int, tuple[str, list[int]]] | None = None,
) -> tuple[ShapeObject, ...]:
    """Place (class, colour) specs without overlap; `constraints[i] = (relation, [j, …])` asks that
    object i lie at `relation` of every object j < i. Raises RuntimeError if no layout is found."""
    constraints = constraints or {}
    lo, hi, gap, margin = _layout_params(size)
    for attempt in range(_ATTEMPTS):
        # Crowded scenes that keep failing get smaller objects.
        top = max(lo, hi - (attempt * (hi - lo)) // (_ATTEMPTS // 2))
        boxes: list[Box] = []
        for i in range(len(specs)):
            side = int(rng.integers(lo, top + 1))
            for _ in range(50):
                box = _place(rng, side, size, margin)
                if any(box.gap(other) < gap for other in boxes):
                    continue
                relation, targets = constraints.get(i, (None, []))
                if relation and not all(relation in relations(box, boxes[j], RELATION_SLACK) for j in targets):
                    continue
                boxes.append(box)
                break
            else:
                break
        if len(boxes) == len(specs):
            return tuple(ShapeObject(cls, color, box) for (cls, color), box in zip(specs, boxes))
    raise RuntimeError(f"could not lay out {len(specs)} objects on a {size}x{size} canvas")


def sample_scene(record: Record, rng: np.random.Generator | int, size: int = 64) -> Scene:
    """A scene whose objects satisfy `record` by GenEval's rules."""
    check_world_record(record)
    rng = np.random.default_rng(rng)
    specs: list[tuple[str, str]] = []
    groups: list[list[int]] = []  # object indices created for each include clause
    constraints: dict[int, tuple[str, list[int]]] = {}
    for clause in record.include:
        group = []
        for _ in range(clause.count):
            color = clause.color or COLORS[int(rng.integers(len(COLORS)))]
            if clause.position is not None:
                relation, target = clause.position
                constraints[len(specs)] = (relation, groups[target])
            group.append(len(specs))
            specs.append((clause.cls, color))
        groups.append(group)
    for i, clause in enumerate(record.exclude):
        present = sum(1 for cls, _ in specs if cls == clause.cls)
        if present >= clause.count:
            raise InputError(
                f"record {record.prompt!r}: exclude[{i}] forbids {clause.count} {clause.cls}(s) "
                f"but include asks for {present}"
            )
    return Scene(size=size, objects=place_objects(specs, rng, size, constraints))


def sample_random_scene(rng: np.random.Generator | int, size: int = 64, max_objects: int = 4) -> Scene:
    """A scene of 1..max_objects random objects that ignores any prompt."""
    rng = np.random.default_rng(rng)
    n = int(rng.integers(1, max_objects + 1))
    specs = [(SHAPES[int(rng.integers(len(SHAPES)))], COLORS[int(rng.integers(len(COLORS)))]) for _ in range(n)]
    return Scene(size=size, objects=place_objects(specs, rng, size))


def sample_count_scene(rng: np.random.Generator | int, size: int = 64, max_count: int = 4, max_objects: int = 4) -> Scene:
    """A prompt-free scene: a class 1..max_count times (each count as often), then, each with even
    chance, up to two more classes in the room left (max_objects in all); colours drawn per object or
    one per class. Every class at every count a counting or two-object prompt can ask for, which the
    records' scenes (of the training split only) are not."""
    rng = np.random.default_rng(rng)
    order = rng.permutation(len(SHAPES))
    counts = [int(rng.integers(1, max_count + 1))]
    while len(counts) < 3 and sum(counts) < max_objects and rng.random() < 0.5:
        counts.append(int(rng.integers(1, min(max_count, max_objects - sum(counts)) + 1)))
    specs: list[tuple[str, str]] = []
    for cls, count in zip(order, counts):
        one = COLORS[int(rng.integers(len(COLORS)))] if rng.random() < 0.5 else None
        specs += [(SHAPES[int(cls)], one or COLORS[int(rng.integers(len(COLORS)))]) for _ in range(count)]
    return Scene(size=size, objects=place_objects(specs, rng, size))
