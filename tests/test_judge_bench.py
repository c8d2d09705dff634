"""The judge benches: bench/judge_perception.py's facts per class (from a probe's tokens and from a
judge's reading) and its probe; bench/judge_heldout.py's paired comparison of judges."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cotgen.judge.prompts import JudgePrompts
from cotgen.train.judge.config import JudgeDataConfig
from cotgen.train.judge.dataset import validation_settings
from cotgen.train.judge.examples import Example, ExampleSet, fingerprint
from cotgen.train.judge.metrics import balanced_accuracy, rates
from cotgen.train.judge.reading import CENTRE_CLASSES
from cotgen.train.judge.reflection import reflection_scores
from cotgen.world.records import records_by_prompt

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return load_bench("judge_perception")


def test_a_reading_and_a_probes_tokens_give_counts_and_colours_per_class(bench):
    record = records_by_prompt()["a photo of a circle and a square"]
    assert bench.reading_facts("circle: 2, red, blue; square: none. answer: no", record) == {"circle": (2, ("blue", "red")), "square": (0, ())}
    assert bench.reading_facts("circle: 1, red", record) == {"circle": (1, ("red",)), "square": (0, ())}  # a class left out: none
    tokens = [0] * 64
    tokens[3], tokens[9], tokens[20], tokens[40] = (CENTRE_CLASSES.index(c) for c in ("red circle", "blue circle", "green cross", "blob"))
    assert bench.probe_facts(tokens, record) == {"circle": (2, ("blue", "red")), "square": (0, ())}


def test_tally_counts_each_class_under_its_tag_and_its_place_in_a_two_class_prompt(bench):
    rows = {}
    want = {"circle": (2, ("blue", "red")), "square": (1, ("green",))}
    bench.tally(rows, "two_object", "probe", want, want)  # the probe right on both classes
    bench.tally(rows, "two_object", "judge", {"circle": (2, ("blue", "red")), "square": (0, ())}, want)  # second class missed
    bench.tally(rows, "colors", "judge", {"circle": (1, ("red",))}, {"circle": (1, ("blue",))})  # count right, colour wrong
    assert rows["two_object"]["classes"] == 2 and rows["two_object"]["judge count"] == 1 and rows["two_object"]["probe count"] == 2
    assert rows["two_object, class 1"]["judge count+colours"] == 1 and rows["two_object, class 2"]["judge count"] == 0
    assert rows["two_object, class 2"]["classes"] == 1
    assert "colors, class 1" not in rows  # one class named: no split
    assert rows["colors"]["judge count"] == 1 and rows["colors"]["judge count+colours"] == 0


def test_one_class_facts_ask_each_class_of_a_two_class_prompt_alone(bench, tmp_path):
    from cotgen.judge import JudgePrompts, load_judge
    from cotgen.world.render import render
    from cotgen.world.sampler import sample_scene

    records = records_by_prompt()
    two, one = "a photo of a circle and a square", "a photo of a circle"
    for name, prompt in (("two.png", two), ("one.png", one)):
        render(sample_scene(records[prompt], np.random.default_rng(1))).save(tmp_path / name)
    examples = ExampleSet(tmp_path, [Example("two.png", "q", "yes", "two_object", two), Example("one.png", "q", "yes", "single_object", one)])
    judge = load_judge("embedded")
    rows = bench.one_class_facts(judge, examples)
    assert [(tag, cls) for tag, cls, _, _ in rows] == [("two_object", "circle"), ("two_object", "square")]  # two-class prompts only
    # what the judge reads of the two-class image asked with each class's single-object prompt
    alone = ["a photo of a circle", "a photo of a square"]
    _, readings = judge.read([examples.image("two.png")] * 2, [JudgePrompts().orm.format(prompt=p) for p in alone])
    for (_, cls, got, want), read, prompt in zip(rows, readings, alone):
        assert got == bench.reading_facts(read, records[prompt]) and set(got) == {cls}
        assert want == {cls: bench.evaluator_facts(examples, "two.png", records[two])[cls]} == {cls: (1, want[cls][1])}


def test_the_probe_learns_separable_token_classes(bench):
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, len(CENTRE_CLASSES), (64, 16), generator=generator)
    centres = torch.randn(len(CENTRE_CLASSES), 32, generator=generator) * 3
    features = centres[targets] + 0.1 * torch.randn(64, 16, 32, generator=generator)
    for hidden in (0, 64):
        head = bench.train_probe(features, targets, hidden, epochs=30, seed=0)
        assert (head(features).argmax(-1) == targets).float().mean() > 0.95


def test_resampled_balanced_accuracy_is_the_trainers_on_the_whole_set():
    heldout = load_bench("judge_heldout")
    rng = np.random.default_rng(3)
    tags = np.array(rng.choice(["counting", "position", "colors"], 200))
    truth, p = rng.random(200) < 0.4, rng.random(200)
    truth[tags == "colors"] = True  # one answer only: left out of the tag mean, as the trainer's
    figures = heldout.resampled_balanced(p >= 0.5, truth, tags, np.arange(200)[None])
    examples = [Example("x.png", "q", "yes" if t else "no", tag, "p") for t, tag in zip(truth, tags)]
    expected = rates(list(zip(p, examples)))
    assert figures["pooled"][0] == pytest.approx(expected["overall"]["balanced"])
    assert figures["tag mean"][0] == pytest.approx(expected["tag_mean"])
    assert figures["counting"][0] == pytest.approx(balanced_accuracy(p[tags == "counting"], ["yes" if t else "no" for t in truth[tags == "counting"]])["balanced"])


def test_resampled_reflection_rates_are_the_trainers_on_the_whole_set():
    heldout = load_bench("judge_heldout")
    why = ("expected 2 circles, found 1", "expected a red square, found a blue square")
    examples = [
        Example("a.png", "q", "no", "counting", "p", reasons=why),
        Example("b.png", "q", "no", "colors", "p", reasons=why[1:]),
        Example("c.png", "q", "yes", "colors", "p"),
        Example("d.png", "q", "yes", "counting", "p"),
    ]
    texts = [f"no: {why[0]}", "yes", "yes", "no: expected 2 circles, found 3"]
    hits = heldout.reflection_hits(texts, examples)
    figures = heldout.resampled_reflections(hits, np.arange(4)[None])
    expected = reflection_scores(texts, [e.answer for e in examples], [e.reasons for e in examples])
    assert figures['wrong answered "no"'][0] == expected["says_no"] == 0.5
    assert figures["reason recall"][0] == pytest.approx(expected["reason_recall"]) and expected["reason_recall"] == pytest.approx(1 / 3)
    assert figures['correct answered "yes"'][0] == expected["says_yes"] == 0.5
    # a resample of the second image alone: it said "yes" to a wrong image and named none of its reasons
    assert [figures[0] for figures in heldout.resampled_reflections(hits, np.array([[1, 1, 2, 2]])).values()] == [0.0, 0.0, 1.0]


def test_the_seen_comparison_asks_training_images_their_own_prompt_only(tmp_path):
    heldout = load_bench("judge_heldout")
    (tmp_path / "generated").mkdir()
    own = [Example(f"images/{i}.png", "q", "yes", "counting", "p", source="generated") for i in range(5)]
    swaps = [Example(f"images/{i}.png", "q", "no", "counting", "other", source="generated/swap") for i in range(5)]
    lines = [json.dumps(e.to_json()) for pair in zip(own, swaps) for e in pair]
    (tmp_path / "generated" / "examples.jsonl").write_text("\n".join(lines) + "\n")
    kind, examples = heldout.comparison_set(tmp_path, validation=0, seen=3)
    assert kind == "seen training" and len(examples) == 3
    assert {e.source for e in examples.examples} == {"generated"} and examples.folder == tmp_path / "generated"


def test_the_validation_comparison_needs_the_held_out_sets_settings(tmp_path):
    with pytest.raises(SystemExit, match="no finished heldout/ set, so no generator and seed"):
        load_bench("judge_heldout").comparison_set(tmp_path, validation=10, seen=0)


def test_the_compositional_comparisons_split_the_validation_set_by_what_a_compositional_judge_read(tmp_path):
    heldout = load_bench("judge_heldout")
    with pytest.raises(SystemExit, match="--compositional: ORM or reflections on the validation set only"):
        heldout.comparison_set(tmp_path, validation=0, seen=0, compositional="unread")
    # a finished validation set of two records: one names the pair circle–square, the other none
    (tmp_path / "heldout").mkdir()
    (tmp_path / "heldout" / "done.json").write_text(json.dumps({"settings": {"generator": "embedded", "seed": 0}}))
    settings = validation_settings(JudgeDataConfig(generator="embedded"), 0, JudgePrompts(), 2)
    (tmp_path / "validation").mkdir()
    (tmp_path / "validation" / "done.json").write_text(json.dumps({"fingerprint": fingerprint(**settings), "settings": settings}))
    made = [Example("images/0.png", "q", "yes", "two_object", "a photo of a circle and a square"),
            Example("images/1.png", "q", "no", "two_object", "a photo of a circle and a cross")]  # fmt: skip
    (tmp_path / "validation" / "examples.jsonl").write_text("".join(json.dumps(e.to_json()) + "\n" for e in made))
    kind, examples = heldout.comparison_set(tmp_path, validation=2, seen=0, compositional="read")
    assert kind == "validation (combinations read)" and examples.examples == made[1:]
    assert heldout.comparison_set(tmp_path, validation=2, seen=0)[1].examples == made


def test_the_potential_comparison_asks_each_path_at_its_first_clear_step(tmp_path):
    heldout = load_bench("judge_heldout")
    (tmp_path / "heldout_prefixes").mkdir()
    history = (("clear?", "yes"),)
    made = [  # path 0 clear from step 2, path 1 from step 1
        Example("images/00000_s1.png", "q", "no", "counting", "p", task="clarity"),
        Example("images/00000_s2.png", "q", "no", "counting", "p", task="potential", history=history),
        Example("images/00000_s3.png", "q", "yes", "counting", "p", task="potential", history=history),
        Example("images/00001_s1.png", "q", "yes", "colors", "p", task="potential", history=history),
        Example("images/00001_s2.png", "q", "yes", "colors", "p", task="potential", history=history),
    ]
    (tmp_path / "heldout_prefixes" / "examples.jsonl").write_text("".join(json.dumps(e.to_json()) + "\n" for e in made))
    kind, examples = heldout.comparison_set(tmp_path, validation=0, seen=0, task="potential")
    assert kind == "held-out" and [e.image for e in examples.examples] == ["images/00000_s2.png", "images/00001_s1.png"]


def test_potential_ceiling_oracle_scores_fresh_majority_against_labels():
    """The oracle answers yes where at least half the fresh rollouts pass, and is scored per tag
    against the 4-rollout label like the card's potential figures."""
    ceiling = load_bench("potential_ceiling")
    rows = [
        {"tag": "counting", "label": True, "fresh_pass_rate": 0.5},  # a tie: yes, right
        {"tag": "counting", "label": False, "fresh_pass_rate": 0.75},  # wrong
        {"tag": "counting", "label": False, "fresh_pass_rate": 0.0},  # right
        {"tag": "colors", "label": True, "fresh_pass_rate": 0.25},  # wrong
        {"tag": "colors", "label": True, "fresh_pass_rate": 1.0},  # right
    ]
    result = ceiling.oracle(rows)
    assert result["counting"]["tpr"] == 1.0 and result["counting"]["tnr"] == 0.5
    assert result["colors"]["tpr"] == 0.5 and result["colors"]["tnr"] is None
    assert result["overall"]["tpr"] == 2 / 3 and result["overall"]["tnr"] == 0.5
    assert result["tag_mean"] == 0.75  # only tags with both answers count
    low, high = ceiling.balanced_ci(rows, resamples=200)
    assert 0 <= low <= result["overall"]["balanced"] <= high <= 1


def test_preview_probe_reads_separable_states_and_keeps_the_prompt_state_apart_from_the_prefix():
    """The probe recovers a linearly separable label (choosing its L2 weight by cross-validation);
    the prompt-only state ignores the prefix, the generator's state with the prefix does not."""
    probe = load_bench("preview_probe")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    y = x[:, 0] + 0.5 * x[:, 3] > 0.3
    fitted = probe.Probe(x, y)
    assert fitted.l2 in fitted.cv and probe.balanced(fitted.predict(x), y) > 0.95
    prompt = "a photo of a red circle"
    tokens = np.stack([np.arange(64) % 7, np.arange(64) % 11])
    at_boi, with_prefix = probe.generator_states("embedded", [prompt, prompt], tokens)
    assert np.array_equal(at_boi[0], at_boi[1]) and np.array_equal(with_prefix[:, : at_boi.shape[1]], at_boi)
    assert not np.allclose(with_prefix[0], with_prefix[1])


def test_orm_misses_are_wrong_picks_beside_a_correct_candidate_with_their_margin():
    bench = load_bench("orm_misses")

    def paths(prompt, tag, scores, correct):
        return [{"pool": True, "strategy": "orm", "n": 3, "prompt_index": prompt, "tag": tag, "path": i, "final_score": s, "correct": c}
                for i, (s, c) in enumerate(zip(scores, correct))]  # fmt: skip

    rows = pd.DataFrame(
        paths(0, "counting", [0.9996, 0.9995, 0.1], [False, True, False])  # a miss by 1e-4
        + paths(1, "position", [0.2, 0.9, 0.95], [True, False, False])  # a miss by 0.75
        + paths(2, "colors", [0.9, 0.95, 0.1], [False, True, False])  # a hit
        + paths(3, "color_attr", [0.9, 0.8, 0.7], [False, False, False])  # nothing correct to pick
        + [{"pool": False, "strategy": "orm", "n": 3, "prompt_index": 4, "tag": "colors", "path": 0, "final_score": 1.0, "correct": False}]
    )
    found = bench.misses(rows, 3)
    assert found["tag"].tolist() == ["counting", "position"]
    assert found["margin"].tolist() == pytest.approx([1e-4, 0.75])
    assert bench.misses(rows, 1)["tag"].tolist() == []  # path 0 alone: nothing correct beside it
    assert bench.misses(rows, 2)["margin"].tolist() == pytest.approx([1e-4, 0.7])  # the first two paths


def test_a_judge_spec_names_how_it_reads():
    heldout = load_bench("judge_heldout")
    free, forced, copying = (heldout.load_variant(f"embedded#{how}").reading for how in ("free", "skeleton", "census"))
    assert not free.subjects and not free.first_facts
    assert "circle" in forced.subjects and "left of" in forced.relations and not forced.first
    assert copying.first_facts and copying.first and copying.subjects == forced.subjects
    # a judge saved to copy its census writes its own facts when read freely or with its skeleton
    modes = heldout.READING_MODES
    assert modes["free"](copying) == free
    assert modes["skeleton"](copying) == forced and modes["census"](copying) == copying
    assert modes["rules"](copying).rule_reasons and not modes["written"](modes["rules"](copying)).rule_reasons
    assert copying.rule_where and not modes["nowhere"](copying).rule_where and modes["where"](modes["nowhere"](copying)) == copying
    assert copying.rule_count and not modes["nocount"](copying).rule_count and modes["count"](modes["nocount"](copying)) == copying
    with pytest.raises(SystemExit, match="not one of"):
        heldout.load_variant("embedded#sideways")
