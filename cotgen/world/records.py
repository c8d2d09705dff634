"""Prompt sampler: GenEval-schema records of the shapes world, and the train / held-out split.

Wording follows GenEval's `create_prompts.py` ("a photo of an orange circle", "a photo of three
triangles", "a photo of a circle left of a square", …).

The split is a fixed rule, not a random draw. Three kinds of combination are held out:

- class pairs: circle–triangle, square–diamond, triangle–cross (in either order, with any relation);
- colour–class bindings: each class loses two of the six colours (see HELD_OUT_BINDINGS);
- counts: each class loses one of the counts two/three/four.

A judge can also be trained without a few training-split combinations (JUDGE_VALIDATION_*: its
compositional validation, where settings are chosen on combinations it never read, apart from the
held-out ones that are only for reporting).

A record belongs to the *eval* split when any combination it names is held out, to the *train* split
otherwise. No held-out combination ever appears in a training prompt (prompts only: training images
may still show, say, a red circle that a counting prompt left uncoloured). single_object records name
no combination, so both splits share them: the classes themselves must be learnt.

The evaluation set (`evaluation_records`) is 553 records in GenEval's exact tag mix. Tags with fewer
distinct held-out prompts than their quota (single_object has 5, two_object 6) repeat prompts, like
drawing more samples per prompt; GenEval's per-tag mean makes that harmless.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np

from cotgen.errors import InputError
from cotgen.prompts import RELATIONS, TAGS, Clause, Record
from cotgen.world.vocab import COLORS, COUNTS, NUMBER_WORDS, SHAPES, plural, with_article

SPLITS = ("train", "eval")
HELD_OUT_PAIRS = frozenset(
    frozenset(pair) for pair in (("circle", "triangle"), ("square", "diamond"), ("triangle", "cross"))
)
HELD_OUT_BINDINGS = frozenset(
    {
        ("red", "circle"), ("yellow", "circle"),
        ("orange", "square"), ("green", "square"),
        ("yellow", "triangle"), ("blue", "triangle"),
        ("green", "diamond"), ("purple", "diamond"),
        ("blue", "cross"), ("red", "cross"),
    }
)  # fmt: skip
HELD_OUT_COUNTS = frozenset({("circle", 3), ("square", 4), ("triangle", 2), ("diamond", 3), ("cross", 4)})
# Training-split combinations a judge can be trained without (`data.compositional`), so that settings
# are chosen, as the held-out split reports, on combinations the judge never read: one class pair,
# two bindings, two class–counts (each class keeps at least one count to learn).
JUDGE_VALIDATION_PAIRS = frozenset({frozenset(("circle", "square"))})
JUDGE_VALIDATION_BINDINGS = frozenset({("blue", "circle"), ("yellow", "diamond")})
JUDGE_VALIDATION_COUNTS = frozenset({("circle", 2), ("triangle", 4)})

# GenEval's own tag mix (553 records) and the seed that fixes the evaluation set's order.
GENEVAL_TAG_COUNTS = {"single_object": 80, "two_object": 99, "counting": 80, "colors": 94, "position": 100, "color_attr": 100}
EVAL_SEED = 2501_13926


def single_object(cls: str) -> Record:
    return Record("single_object", (Clause(cls, 1),), f"a photo of {with_article(cls)}")


def two_object(a: str, b: str) -> Record:
    return Record("two_object", (Clause(a, 1), Clause(b, 1)), f"a photo of {with_article(a)} and {with_article(b)}")


def counting(cls: str, n: int) -> Record:
    return Record("counting", (Clause(cls, n),), f"a photo of {NUMBER_WORDS[n]} {plural(cls)}", exclude=(Clause(cls, n + 1),))


def colors(color: str, cls: str) -> Record:
    return Record("colors", (Clause(cls, 1, color=color),), f"a photo of {with_article(color)} {cls}")


def position(a: str, relation: str, b: str) -> Record:
    """"a photo of an A <relation> a B": B is the target clause, as in GenEval."""
    include = (Clause(b, 1), Clause(a, 1, position=(relation, 0)))
    return Record("position", include, f"a photo of {with_article(a)} {relation} {with_article(b)}")


def color_attr(color_a: str, a: str, color_b: str, b: str) -> Record:
    include = (Clause(a, 1, color=color_a), Clause(b, 1, color=color_b))
    prompt = f"a photo of {with_article(color_a)} {a} and {with_article(color_b)} {b}"
    return Record("color_attr", include, prompt)


@cache
def all_records(tag: str) -> tuple[Record, ...]:
    """Every distinct record of `tag` the world can express, in a fixed order."""
    pairs = list(itertools.permutations(SHAPES, 2))
    if tag == "single_object":
        return tuple(single_object(c) for c in SHAPES)
    if tag == "two_object":
        return tuple(two_object(a, b) for a, b in pairs)
    if tag == "counting":
        return tuple(counting(c, n) for c in SHAPES for n in COUNTS)
    if tag == "colors":
        return tuple(colors(k, c) for c in SHAPES for k in COLORS)
    if tag == "position":
        return tuple(position(a, r, b) for a, b in pairs for r in RELATIONS)
    if tag == "color_attr":
        color_pairs = list(itertools.permutations(COLORS, 2))  # GenEval never repeats the colour
        return tuple(color_attr(ka, a, kb, b) for a, b in pairs for ka, kb in color_pairs)
    raise InputError(f"unknown tag {tag!r} (expected one of {', '.join(TAGS)})")


@cache
def records_by_prompt() -> dict[str, Record]:
    """Every record the world can express, by its prompt (no two records share a prompt)."""
    return {r.prompt: r for tag in TAGS for r in all_records(tag)}


def names_any(record: Record, pairs: frozenset, bindings: frozenset, counts: frozenset) -> bool:
    """True if the record names any of these class pairs, colour–class bindings or class–counts."""
    classes = [c.cls for c in record.include]
    if len(classes) == 2 and frozenset(classes) in pairs:
        return True
    if any((c.color, c.cls) in bindings for c in record.include if c.color):
        return True
    return record.tag == "counting" and (classes[0], record.include[0].count) in counts


def is_held_out(record: Record) -> bool:
    """True if the record names any held-out class pair, colour–class binding or count."""
    return names_any(record, HELD_OUT_PAIRS, HELD_OUT_BINDINGS, HELD_OUT_COUNTS)


def is_judge_validation(record: Record) -> bool:
    """True if the training-split record names a combination set apart for the judge's compositional
    validation (JUDGE_VALIDATION_PAIRS, _BINDINGS, _COUNTS)."""
    return not is_held_out(record) and names_any(
        record, JUDGE_VALIDATION_PAIRS, JUDGE_VALIDATION_BINDINGS, JUDGE_VALIDATION_COUNTS
    )


def judge_validation_records() -> list[Record]:
    """Every training-split record that names a judge-validation combination, tags in order."""
    return [r for tag in TAGS for r in split_records(tag, "train") if tag != "single_object" and is_judge_validation(r)]


def split_records(tag: str, split: str) -> tuple[Record, ...]:
    """The distinct records of `tag` in `split` (single_object records are in both)."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    records = all_records(tag)
    if tag == "single_object":
        return records
    return tuple(r for r in records if is_held_out(r) == (split == "eval"))


def sample_records(tag: str, n: int, split: str, seed: int) -> list[Record]:
    """`n` records of `tag` from `split`: a seeded shuffle of the distinct records, repeated as needed."""
    pool = split_records(tag, split)
    rng = np.random.default_rng([seed, TAGS.index(tag)])
    order: list[int] = []
    while len(order) < n:
        order.extend(int(i) for i in rng.permutation(len(pool)))
    return [pool[i] for i in order[:n]]


def evaluation_records() -> list[Record]:
    """The fixed held-out evaluation set: 553 records in GenEval's tag mix and tag order."""
    return [r for tag in TAGS for r in sample_records(tag, GENEVAL_TAG_COUNTS[tag], "eval", EVAL_SEED)]


def tuning_records(seed: int) -> list[Record]:
    """Training-split records in the evaluation set's tag mix and order: where settings are chosen."""
    return [r for tag in TAGS for r in sample_records(tag, GENEVAL_TAG_COUNTS[tag], "train", seed)]


def sample_training_record(rng: np.random.Generator) -> Record:
    """A training-split record: tag uniformly, then a distinct record of that tag uniformly."""
    pool = split_records(TAGS[int(rng.integers(len(TAGS)))], "train")
    return pool[int(rng.integers(len(pool)))]


def first_per_tag(records: list[Record], n: int) -> list[Record]:
    """The first `n` records of each tag, tags in GenEval's order."""
    return [r for tag in TAGS for r in [r for r in records if r.tag == tag][:n]]
