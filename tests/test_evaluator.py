from collections import deque

import numpy as np
import pytest

from cotgen.evaluate import evaluate_image, read_scene, summarize
from cotgen.evaluate.agreement import measure_agreement, measure_false_correct
from cotgen.evaluate.reader import label_components
from cotgen.world import Box, Scene, ShapeObject, render, sample_scene
from cotgen.world.degrade import DEGRADATIONS, vq_like
from cotgen.world.perturb import BREAKAGES
from cotgen.world.records import color_attr, colors, counting, position, single_object, two_object


def obj(cls, color, x, y, side=18):
    return ShapeObject(cls, color, Box(x, y, x + side, y + side))


def evaluate_scene(record, *objects, degrade=None):
    image = render(Scene(64, objects))
    if degrade:
        image = degrade(image, np.random.default_rng(0))
    return evaluate_image(image, record)


def test_clean_renders_read_back_exactly():
    stats = measure_agreement(300, seed=11)
    assert stats.object_rate == 1.0  # every object: class, colour and box
    assert stats.verdict_rate == 1.0
    assert 0 < stats.positives < stats.scenes  # both verdicts are exercised


@pytest.mark.parametrize("degradation", sorted(DEGRADATIONS))
def test_verdicts_survive_tokenizer_like_degradation(degradation):
    assert measure_agreement(120, seed=12, degradation=degradation).verdict_rate >= 0.97


@pytest.mark.parametrize("kind", BREAKAGES)
def test_broken_images_are_not_judged_correct(kind):
    assert measure_false_correct(60, kind, seed=13, degradation="all").false_correct <= 1


def test_correct_image_has_no_reasons():
    result = evaluate_scene(color_attr("red", "circle", "blue", "square"),
                            obj("circle", "red", 4, 4), obj("square", "blue", 36, 36))
    assert result.correct and result.reasons == ()
    assert {(o.cls, o.color) for o in result.objects} == {("circle", "red"), ("square", "blue")}


def test_count_reasons():
    record = counting("triangle", 3)
    two = evaluate_scene(record, obj("triangle", "red", 4, 4), obj("triangle", "blue", 40, 40))
    assert not two.correct and two.reasons == ("expected 3 triangles, found 2",)
    four = evaluate_scene(record, *(obj("triangle", "green", x, y) for x in (4, 40) for y in (4, 40)))
    assert not four.correct and four.reasons == ("expected 3 triangles, found 4",)
    none = evaluate_scene(single_object("circle"), obj("square", "red", 20, 20))
    assert none.reasons == ("expected a circle, found none",)


def test_colour_reason():
    result = evaluate_scene(colors("red", "circle"), obj("circle", "blue", 20, 20))
    assert result.reasons == ("the circle is blue, expected red",)


def test_position_reason():
    record = position("circle", "left of", "square")
    wrong = evaluate_scene(record, obj("square", "green", 4, 20), obj("circle", "red", 40, 20))
    assert wrong.reasons == ("the circle is not left of the square (it is right of it)",)
    right = evaluate_scene(record, obj("square", "green", 40, 20), obj("circle", "red", 4, 20))
    assert right.correct


def test_position_is_not_judged_when_an_object_is_missing():
    result = evaluate_scene(position("circle", "above", "square"), obj("circle", "red", 20, 4))
    assert result.reasons == ("expected a square, found none",)


def test_colour_is_judged_on_the_most_confident_object_like_geneval():
    # GenEval checks the colour of the detector's top-`count` objects; here the largest one.
    record = colors("red", "circle")
    result = evaluate_scene(record, obj("circle", "blue", 4, 4, side=24), obj("circle", "red", 40, 40, side=18))
    assert not result.correct and result.reasons == ("the circle is blue, expected red",)


def test_merged_shapes_are_a_blob_not_objects():
    record = two_object("circle", "square")
    result = evaluate_scene(record, obj("circle", "red", 10, 10, side=22), obj("square", "red", 22, 22, side=22))
    assert not result.correct
    assert result.objects == () and len(result.blobs) == 1
    assert result.reasons[-1] == "1 unrecognisable shape in the image"


def test_degraded_scene_still_reads_its_objects():
    scene = sample_scene(color_attr("yellow", "triangle", "purple", "cross"), 5)
    reading = read_scene(vq_like(render(scene), np.random.default_rng(1)))
    assert sorted((o.cls, o.color) for o in reading.objects) == sorted((o.cls, o.color) for o in scene.objects)


def _flood_fill_count(mask):
    seen = np.zeros_like(mask)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count += 1
        queue = deque([start])
        seen[start] = True
        while queue:
            y, x = queue.popleft()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
    return count


def test_component_labelling_matches_a_flood_fill():
    rng = np.random.default_rng(0)
    for density in (0.3, 0.5, 0.6):
        mask = rng.random((40, 50)) < density
        labels = label_components(mask)
        assert (labels >= 0).sum() == mask.sum()
        assert len(np.unique(labels[labels >= 0])) == _flood_fill_count(mask)
        # a spiral-like snake is one component
    snake = np.zeros((21, 21), bool)
    snake[::4, :] = True
    snake[:, 0] = True
    assert len(np.unique(label_components(snake)[snake])) == 1


def test_overall_is_the_mean_of_tag_means():
    summary = summarize([("counting", True)] * 9 + [("counting", False)] + [("position", False)] * 3 + [("position", True)])
    assert summary.tags["counting"].mean == 0.9 and summary.tags["position"].mean == 0.25
    assert summary.overall == pytest.approx((0.9 + 0.25) / 2)  # not 10/14
    with pytest.raises(ValueError):
        summarize([])
