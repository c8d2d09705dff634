"""The count head: each class's count read off the judge's visual tokens, and forced into its reading."""

import json
import shutil
import subprocess
import sys
from collections import Counter

import pytest
import torch
from test_judge_reading import REPO

from cotgen.errors import InputError
from cotgen.evaluate.reader import read_scene
from cotgen.judge import load_judge
from cotgen.judge.count_head import HEAD_FILE, CountHead, load_count_head
from cotgen.judge.head_files import write_head
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.rule_reasons import numbered_classes
from cotgen.judge.skeleton import Skeleton, with_counts
from cotgen.judge.where import visual_features
from cotgen.models.presets import resolve
from cotgen.train.judge.census_scenes import build_census_scenes
from cotgen.train.judge.count_fit import fit_count_head
from cotgen.train.judge.examples import ExampleSet
from cotgen.world.records import records_by_prompt
from cotgen.world.render import render
from cotgen.world.sampler import sample_scene
from cotgen.world.vocab import SHAPES

FOUR = "a photo of four squares"


@pytest.fixture(scope="module")
def judge():
    return load_judge("embedded")


def saying(judge, n: int) -> CountHead:
    """A count head on the judge's tokens that finds n of every class, whatever the image."""
    head = CountHead(judge.model.config.text_config.hidden_size, list(SHAPES), 64)
    with torch.no_grad():
        for p in head.parameters():
            p.zero_()
        head.readout.bias[n] = 10.0
    return head


def test_counts_replace_the_copied_ones_and_keep_the_colours():
    sk = Skeleton(("square", "circle"), facts=("2, red, blue", "none"))
    assert with_counts(sk, {"square": 3}).facts == ("3, red, blue", "none")
    assert with_counts(sk, {"square": 0, "circle": 2}).facts == ("none", "2")
    assert with_counts(Skeleton(("square",)), {"square": 4}).facts == ("4",)  # nothing copied: the count alone
    assert with_counts(Skeleton(("square", "circle")), {"circle": 1}).facts == (None, "1")  # the rest left to the judge


def test_only_the_classes_a_prompt_asks_two_or_more_of_are_counted_by_the_head():
    asked = JudgePrompts().orm.format
    assert numbered_classes(asked(prompt=FOUR)) == {"square"}
    assert numbered_classes(asked(prompt="a photo of a circle left of a square")) == set()
    assert numbered_classes("Is this a photo of seven dragons?") == set()


def test_a_head_is_saved_with_its_settings_and_bad_files_are_refused(tmp_path):
    torch.manual_seed(0)
    head = CountHead(16, list(SHAPES), 64, width=4, max_count=5)
    assert load_count_head(tmp_path) is None
    head.save(tmp_path)
    loaded = load_count_head(tmp_path)
    assert (loaded.classes, loaded.tokens, loaded.width, loaded.max_count) == (list(SHAPES), 64, 4, 5)
    features = torch.randn(2 * 64, 16)
    assert torch.equal(loaded(features), head(features)) and len(loaded.counts(features)) == 2
    (tmp_path / HEAD_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not a count head"):
        load_count_head(tmp_path)
    two = CountHead(16, list(SHAPES[:2]), 64, width=4, max_count=5).state_dict()  # two classes' tensors, five named
    write_head(tmp_path / HEAD_FILE, dict(two), {"classes": json.dumps(list(SHAPES)), "tokens": "64", "max_count": "5"})
    with pytest.raises(InputError, match="tensor shapes do not match 5 classes"):
        load_count_head(tmp_path)
    with pytest.raises(InputError, match="whole images"):
        head(torch.zeros(65, 16))
    with pytest.raises(InputError, match="count head"):
        CountHead(16, [], 64)


def test_the_reading_states_the_heads_count_for_a_counting_prompt_of_a_finished_image(judge):
    assert judge.reading.rule_count and judge.count is not None
    record = records_by_prompt()[FOUR]
    images = [render(sample_scene(record, seed)) for seed in range(4)]
    question = [JudgePrompts().orm.format(prompt=FOUR)] * len(images)
    shipped = judge.count
    try:
        judge.count = saying(judge, 2)
        p_yes, readings = judge.read(images, question)
        assert all(r.startswith("square: 2") for r in readings), readings
        assert (p_yes < 0.5).all()  # two squares are not four, by the evaluator's rule
        _, previews = judge.read(images, question, finished=[False] * len(images))
        assert not any(r.startswith("square: 2") for r in previews), previews  # previews keep the census's count
        # a question that asks for no number keeps the census's count
        _, one = judge.read(images[:1], [JudgePrompts().orm.format(prompt="a photo of a square")])
        assert not one[0].startswith("square: 2"), one
    finally:
        judge.count = shipped
    # the shipped head counts rendered squares mostly as the evaluator does, and the reading states its counts
    images = [render(sample_scene(record, seed)) for seed in range(12)]
    found = [c["square"] for c in judge.count.counts(visual_features(judge, images))]
    truth = [sum(o.cls == "square" for o in read_scene(image).objects) for image in images]
    assert truth == [4] * 12 and sum(f == t for f, t in zip(found, truth)) >= 10, found
    p_yes, readings = judge.read(images, question[:1] * 12)
    assert [r.startswith(f"square: {f}") for r, f in zip(readings, found)] == [True] * 12, readings
    assert [p >= 0.5 for p in p_yes.tolist()] == [f == 4 for f in found]


def test_a_judge_set_to_count_needs_its_head(tmp_path):
    shutil.copytree(resolve("embedded", "judge"), tmp_path / "judge")
    (tmp_path / "judge" / HEAD_FILE).unlink()
    with pytest.raises(InputError, match="no count head"):
        load_judge(tmp_path / "judge")


def test_a_head_fitted_on_frozen_tokens_counts_rendered_scenes(judge, tmp_path):
    (tmp_path / "images").mkdir()
    scenes = ExampleSet(tmp_path, list(build_census_scenes(tmp_path, 96, 5, 0.0)))
    images = [scenes.image(e.image) for e in scenes.examples]
    truth = [Counter(o.cls for o in read_scene(image).objects) for image in images]
    before = [p.clone() for p in judge.model.parameters()]
    head, loss = fit_count_head(judge, images[:80], steps=400, batch=64)
    assert loss < 0.5
    assert all(torch.equal(a, b) for a, b in zip(before, judge.model.parameters()))  # the judge is untouched
    counts = head.counts(visual_features(judge, images[80:]))
    right = sum(c[cls] == t[cls] for c, t in zip(counts, truth[80:]) for cls in SHAPES)
    assert right >= 0.8 * 16 * len(SHAPES)


def test_the_fitting_job_refuses_bad_arguments(tmp_path):
    job = [sys.executable, str(REPO / "jobs" / "fit_count_head.py"), "--judge", str(tmp_path), "--data", str(tmp_path)]
    done = subprocess.run([*job, "--images", "0"], check=False, capture_output=True, text=True)
    assert done.returncode == 2 and "--images: must not be below 1" in done.stderr
    done = subprocess.run(job, check=False, capture_output=True, text=True)
    assert done.returncode == 2 and "no finished set" in done.stderr
