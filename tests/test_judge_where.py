"""The where head: where the judge's visual tokens place each class, and the relation read off it."""

import shutil
import subprocess
import sys

import pytest
import torch
from PIL import ImageOps
from test_judge_reading import REPO

from cotgen.errors import InputError
from cotgen.evaluate.reader import read_scene
from cotgen.evaluate.rules import confidence_order
from cotgen.judge import load_judge
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.skeleton import Skeleton, SkeletonForcing
from cotgen.judge.where import HEAD_FILE, WhereHead, load_where_head, visual_features
from cotgen.models.presets import resolve
from cotgen.train.judge.reading import CENTRE_CLASSES
from cotgen.train.judge.where_head import fit_where_head
from cotgen.world.records import records_by_prompt
from cotgen.world.render import render
from cotgen.world.sampler import sample_scene
from cotgen.world.scene import relations

CELLS = 8
LEFT = "a photo of a circle left of a square"


@pytest.fixture(scope="module")
def judge():
    return load_judge("embedded")


def placed(where: WhereHead, at: dict[str, tuple[int, int]]) -> torch.Tensor:
    """One image's cell probabilities with each named class ("red circle") surely at (column, row)."""
    probs = torch.zeros(CELLS * CELLS, len(where.classes))
    probs[:, 0] = 1.0
    for name, (x, y) in at.items():
        probs[y * CELLS + x] = 0.0
        probs[y * CELLS + x, where.classes.index(name)] = 1.0
    return probs


def a_head() -> WhereHead:
    return WhereHead(torch.zeros(len(CENTRE_CLASSES), 4), torch.zeros(len(CENTRE_CLASSES)), list(CENTRE_CLASSES), CELLS, 64)


def test_the_relation_is_genevals_between_the_cells_where_the_head_finds_the_classes():
    where = a_head()
    side_by_side = placed(where, {"red circle": (1, 3), "blue square": (6, 3)})
    assert where.holds(side_by_side, "circle", "left of", "square") is True
    assert where.holds(side_by_side, "square", "right of", "circle") is True
    assert where.holds(side_by_side, "circle", "above", "square") is False
    assert where.holds(side_by_side, "circle", "left of", "triangle") is None  # no triangle anywhere
    stacked = placed(where, {"green circle": (4, 1), "green square": (4, 6)})
    assert where.holds(stacked, "circle", "above", "square") is True
    assert where.holds(stacked, "circle", "left of", "square") is False
    # two objects of one class: the reference is another cell than the subject's
    pair = placed(where, {"red circle": (1, 2), "blue circle": (6, 2)})
    assert where.holds(pair, "circle", "left of", "circle") is True


def test_a_head_is_saved_with_its_classes_and_bad_files_are_refused(tmp_path):
    where = WhereHead(torch.randn(len(CENTRE_CLASSES), 4), torch.randn(len(CENTRE_CLASSES)), list(CENTRE_CLASSES), CELLS, 64)
    assert load_where_head(tmp_path) is None
    where.save(tmp_path)
    loaded = load_where_head(tmp_path)
    assert torch.equal(loaded.weight, where.weight) and torch.equal(loaded.bias, where.bias)
    assert (loaded.classes, loaded.cells, loaded.size) == (list(CENTRE_CLASSES), CELLS, 64)
    (tmp_path / HEAD_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not a where head"):
        load_where_head(tmp_path)
    with pytest.raises(InputError, match="classes"):
        WhereHead(torch.zeros(3, 4), torch.zeros(3), list(CENTRE_CLASSES), CELLS, 64)
    with pytest.raises(InputError, match="whole images"):
        where.cell_probs(torch.zeros(CELLS * CELLS + 1, 4))


def test_a_known_relation_is_forced_into_the_reading(judge):
    tokenizer = judge.processor.tokenizer
    sk = Skeleton(("square", "circle"), ("circle", "left of", "square"), ("1, red", "1, blue"))
    forcing = SkeletonForcing(tokenizer, judge.reading, [], 0, set())
    prefix = tokenizer.encode("square: 1, red; circle: 1, blue; circle is", add_special_tokens=False)
    choose = forcing._allowed(sk, prefix)
    holding, failing = (tokenizer.encode(f" {w}left of square", add_special_tokens=False)[0] for w in ("", "not "))
    assert choose == {holding, failing}
    assert forcing._allowed(Skeleton(sk.classes, sk.relation, sk.facts, holds=True), prefix) == {holding}
    assert forcing._allowed(Skeleton(sk.classes, sk.relation, sk.facts, holds=False), prefix) == {failing}


def test_the_shipped_judge_states_the_relation_where_its_head_finds_the_objects(judge):
    """Rendered position scenes and their mirror images: the reading's relation is the evaluator's."""
    assert judge.reading.rule_where and judge.where is not None
    record = records_by_prompt()[LEFT]
    images = [render(sample_scene(record, seed)) for seed in range(4)]
    images += [ImageOps.mirror(image) for image in images]
    truth = []
    for image in images:
        objects = confidence_order(read_scene(image).objects)
        circle, square = (next(o for o in objects if o.cls == cls) for cls in ("circle", "square"))
        truth.append("left of" in relations(circle.box, square.box))
    assert truth == [True] * 4 + [False] * 4
    p_yes, readings = judge.read(images, [JudgePrompts().orm.format(prompt=LEFT)] * len(images))
    stated = [" circle is left of square" in f" {r}" for r in readings]
    assert stated == truth, readings
    assert [p >= 0.5 for p in p_yes.tolist()] == truth
    # previews keep the judge's own word: nothing is forced on them
    _, as_previews = judge.read(images[:1], [JudgePrompts().orm.format(prompt=LEFT)], finished=[False])
    assert "circle is" in as_previews[0]


def test_a_judge_set_to_place_relations_needs_its_head(tmp_path):
    shutil.copytree(resolve("embedded", "judge"), tmp_path / "judge")
    (tmp_path / "judge" / HEAD_FILE).unlink()
    with pytest.raises(InputError, match="no where head"):
        load_judge(tmp_path / "judge")


def test_a_head_fitted_on_frozen_tokens_finds_rendered_objects(judge):
    record = records_by_prompt()[LEFT]
    images = [render(sample_scene(record, seed)) for seed in range(48)]
    before = [p.clone() for p in judge.model.parameters()]
    where, loss = fit_where_head(judge, images, steps=300, batch=1024)
    assert loss < 0.5
    assert all(torch.equal(a, b) for a, b in zip(before, judge.model.parameters()))  # the judge is untouched
    assert (where.classes, where.cells, where.size) == (list(CENTRE_CLASSES), CELLS, 64)
    probs = where.cell_probs(visual_features(judge, images[:8]))
    assert [where.holds(p, "circle", "left of", "square") for p in probs] == [True] * 8


def test_the_fitting_job_refuses_bad_arguments(tmp_path):
    job = [sys.executable, str(REPO / "jobs" / "fit_where_head.py"), "--judge", str(tmp_path), "--data", str(tmp_path)]
    done = subprocess.run([*job, "--steps", "0"], check=False, capture_output=True, text=True)
    assert done.returncode == 2 and "--steps: must not be below 1" in done.stderr
    done = subprocess.run(job, check=False, capture_output=True, text=True)
    assert done.returncode == 2 and "no finished set" in done.stderr
