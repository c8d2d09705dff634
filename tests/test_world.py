import itertools
import math
from collections import Counter

import numpy as np
import pytest

from cotgen.errors import InputError
from cotgen.evaluate.rules import check
from cotgen.prompts import GENEVAL_COLORS, TAGS, Clause, Record
from cotgen.world import COLORS, PALETTE, SHAPES, Box, render_array, sample_scene, shape_mask
from cotgen.world.records import (
    GENEVAL_TAG_COUNTS,
    HELD_OUT_BINDINGS,
    HELD_OUT_COUNTS,
    HELD_OUT_PAIRS,
    JUDGE_VALIDATION_BINDINGS,
    JUDGE_VALIDATION_COUNTS,
    JUDGE_VALIDATION_PAIRS,
    all_records,
    color_attr,
    colors,
    counting,
    evaluation_records,
    is_held_out,
    is_judge_validation,
    judge_validation_records,
    position,
    sample_records,
    split_records,
    two_object,
)
from cotgen.world.sampler import RELATION_SLACK, check_world_record
from cotgen.world.scene import relations
from cotgen.world.vocab import BACKGROUND, COUNTS, size_range


def test_vocabulary_is_large_enough_and_distinguishable():
    assert len(SHAPES) >= 4 and len(COLORS) >= 6
    assert set(COLORS) <= set(GENEVAL_COLORS)
    closest = min(math.dist(PALETTE[a], PALETTE[b]) for a, b in itertools.combinations(COLORS, 2))
    assert closest >= 70
    assert min(math.dist(rgb, BACKGROUND) for rgb in PALETTE.values()) >= 250


@pytest.mark.parametrize("cls", SHAPES)
def test_every_shape_fills_its_box_exactly(cls):
    for side in range(8, 40):
        ys, xs = np.nonzero(shape_mask(cls, side, side))
        assert (ys.min(), xs.min(), ys.max(), xs.max()) == (0, 0, side - 1, side - 1)


def test_shapes_are_different_from_each_other():
    for a, b in itertools.combinations(SHAPES, 2):
        ma, mb = shape_mask(a, 20, 20), shape_mask(b, 20, 20)
        assert (ma & mb).sum() / (ma | mb).sum() < 0.85


def _scene_objects_ok(scene, record):
    lo, hi = size_range(scene.size)
    for obj in scene.objects:
        assert lo <= obj.box.width == obj.box.height <= hi
        assert 0 < obj.box.x0 and obj.box.x1 < scene.size and 0 < obj.box.y0 and obj.box.y1 < scene.size
    for a, b in itertools.combinations(scene.objects, 2):
        assert a.box.gap(b.box) >= 4
    assert len(scene.objects) == sum(c.count for c in record.include)


def test_sampled_scenes_satisfy_every_evaluation_record():
    for i, record in enumerate(evaluation_records()):
        scene = sample_scene(record, i)
        _scene_objects_ok(scene, record)
        assert check(scene.objects, record).correct, record.prompt


@pytest.mark.parametrize("tag", TAGS)
def test_sampled_scenes_satisfy_training_records(tag):
    for i, record in enumerate(sample_records(tag, 40, "train", seed=1)):
        scene = sample_scene(record, i)
        _scene_objects_ok(scene, record)
        assert check(scene.objects, record).correct, record.prompt


def test_positions_hold_with_a_margin():
    for i, record in enumerate(split_records("position", "train")):
        scene = sample_scene(record, i)
        relation, _ = record.include[1].position
        target, obj = scene.objects
        assert relation in relations(obj.box, target.box, slack=RELATION_SLACK)


def test_scene_sampling_is_seeded():
    record = counting("circle", 4)
    assert sample_scene(record, 7) == sample_scene(record, 7)
    assert sample_scene(record, 7) != sample_scene(record, 8)
    assert np.array_equal(render_array(sample_scene(record, 7)), render_array(sample_scene(record, 7)))


def test_canvas_size_is_a_parameter():
    scene = sample_scene(counting("square", 3), 0, size=128)
    assert render_array(scene).shape == (128, 128, 3)
    _scene_objects_ok(scene, counting("square", 3))


def test_records_outside_the_world_are_rejected():
    with pytest.raises(InputError, match=r"include\[0\]\.class: 'dog' is not a shapes-world class"):
        sample_scene(Record("single_object", (Clause("dog", 1),), "a photo of a dog"), 0)
    with pytest.raises(InputError, match=r"include\[0\]\.color: 'pink'"):
        check_world_record(Record("colors", (Clause("circle", 1, color="pink"),), "a photo of a pink circle"))


def test_prompts_use_genevals_wording():
    assert counting("triangle", 3).prompt == "a photo of three triangles"
    assert counting("cross", 2).prompt == "a photo of two crosses"
    assert colors("orange", "circle").prompt == "a photo of an orange circle"
    assert two_object("circle", "square").prompt == "a photo of a circle and a square"
    assert position("circle", "left of", "square").prompt == "a photo of a circle left of a square"
    assert color_attr("red", "circle", "blue", "square").prompt == "a photo of a red circle and a blue square"
    rec = position("circle", "left of", "square")
    assert rec.to_json()["include"] == [{"class": "square", "count": 1}, {"class": "circle", "count": 1, "position": ["left of", 0]}]
    assert counting("triangle", 3).to_json()["exclude"] == [{"class": "triangle", "count": 4}]


def _combinations(record):
    """Every combination a record names: class pairs, bindings, counts, relation triples."""
    classes = [c.cls for c in record.include]
    combos = {("binding", c.color, c.cls) for c in record.include if c.color}
    if len(classes) == 2:
        combos.add(("pair", frozenset(classes)))
    if record.tag == "counting":
        combos.add(("count", classes[0], record.include[0].count))
    if record.tag == "position":
        combos.add(("relation", classes[1], record.include[1].position[0], classes[0]))
    return combos


def test_no_held_out_combination_occurs_in_training():
    train = {c for tag in TAGS for r in split_records(tag, "train") for c in _combinations(r)}
    evaluation = [r for r in evaluation_records() if r.tag != "single_object"]
    for record in evaluation:  # every one names at least one combination never seen in training
        assert _combinations(record) - train, record.prompt
    # and the held-out sets themselves are absent from training
    assert not {("pair", p) for p in HELD_OUT_PAIRS} & train
    assert not {("binding", k, c) for k, c in HELD_OUT_BINDINGS} & train
    assert not {("count", c, n) for c, n in HELD_OUT_COUNTS} & train
    # relation triples of held-out pairs never appear in training either
    assert not {c for c in train if c[0] == "relation" and frozenset((c[1], c[3])) in HELD_OUT_PAIRS}


def test_the_judge_validation_combinations_are_training_ones_and_what_is_left_still_covers_the_world():
    train = {c for tag in TAGS for r in split_records(tag, "train") for c in _combinations(r)}
    assert {("pair", p) for p in JUDGE_VALIDATION_PAIRS} <= train
    assert {("binding", k, c) for k, c in JUDGE_VALIDATION_BINDINGS} <= train
    assert {("count", c, n) for c, n in JUDGE_VALIDATION_COUNTS} <= train
    records = judge_validation_records()
    assert records and not any(is_held_out(r) for r in records) and all(is_judge_validation(r) for r in records)
    assert {r.tag for r in records} == set(TAGS) - {"single_object"}
    # a judge trained without them still reads every class, colour and count, each class at some count
    left = [r for tag in TAGS for r in split_records(tag, "train") if not is_judge_validation(r)]
    assert {c.cls for r in left for c in r.include} == set(SHAPES)
    assert {c.color for r in left for c in r.include if c.color} == set(COLORS)
    assert {r.include[0].cls for r in left if r.tag == "counting"} == set(SHAPES)
    assert {r.include[0].count for r in left if r.tag == "counting"} == set(COUNTS)


def test_training_still_covers_every_class_colour_and_count():
    train = [r for tag in TAGS for r in split_records(tag, "train")]
    assert {c.cls for r in train for c in r.include} == set(SHAPES)
    assert {c.color for r in train for c in r.include if c.color} == set(COLORS)
    assert {r.include[0].count for r in train if r.tag == "counting"} == set(COUNTS)


def test_evaluation_set_has_genevals_tag_mix_and_is_deterministic():
    records = evaluation_records()
    assert len(records) == 553
    assert Counter(r.tag for r in records) == Counter(GENEVAL_TAG_COUNTS)
    assert records == evaluation_records()
    # tags with enough distinct held-out prompts never repeat one
    color_attr_prompts = [r.prompt for r in records if r.tag == "color_attr"]
    assert len(set(color_attr_prompts)) == len(color_attr_prompts)


def test_every_split_is_a_partition_of_the_tag():
    for tag in TAGS:
        train, held = set(split_records(tag, "train")), set(split_records(tag, "eval"))
        if tag == "single_object":
            assert train == held == set(all_records(tag))
        else:
            assert train.isdisjoint(held) and train | held == set(all_records(tag)) and train and held


def test_train_sampling_is_seeded_and_stays_in_split():
    a = sample_records("color_attr", 50, "train", seed=3)
    assert a == sample_records("color_attr", 50, "train", seed=3)
    assert a != sample_records("color_attr", 50, "train", seed=4)
    assert set(a) <= set(split_records("color_attr", "train"))


def test_genevals_relative_position_rule():
    square = Box(40, 20, 60, 40)
    assert relations(Box(5, 20, 25, 40), square) == {"left of"}
    assert relations(Box(40, 50, 60, 64), square) == {"below"}
    assert relations(Box(10, 0, 30, 20), Box(40, 30, 60, 50)) == {"left of", "above"}  # 45°: both
    assert relations(Box(42, 22, 58, 38), square) == set()  # same centre
    # within the 10 % threshold: centres 3 px apart, boxes 20 + 20 wide -> shrunk to nothing
    assert relations(Box(37, 20, 57, 40), square) == set()
