"""The embedded judge's builder, its labelled data and its training recipe (run end to end, tiny)."""

import json
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cotgen.config import load_config
from cotgen.errors import InputError
from cotgen.evaluate.exact import evaluate_image
from cotgen.evaluate.reader import Reading, read_scene
from cotgen.judge import JudgePrompts, answer_tokens, load_judge
from cotgen.judge.provenance import trained_on
from cotgen.judge.where import HEAD_FILE
from cotgen.models.presets import weights_digest
from cotgen.prompts import TAGS
from cotgen.train.common.cards import rate
from cotgen.train.common.schedule import Budget
from cotgen.train.judge import card
from cotgen.train.judge.card import census_first_text, census_row, reflection_text, weighting
from cotgen.train.judge.cells import CELL_COLORS, CELL_SHAPES, cell_targets
from cotgen.train.judge.census_scenes import build_census_scenes, counting_records, draw_census_batch, spoilt
from cotgen.train.judge.config import (
    AnswerStageConfig,
    JudgeDataConfig,
    JudgeModelConfig,
    TrainJudgeConfig,
    VisionConfig,
    recipe_chain,
)
from cotgen.train.judge.dataset import build_dataset, build_validation, build_validation_prefixes
from cotgen.train.judge.describe import describe, describe_target
from cotgen.train.judge.examples import Example, ExampleSet, cached
from cotgen.train.judge.generated import build_generated, compositional_validation_records, validation_records
from cotgen.train.judge.labels import training_records
from cotgen.train.judge.losses import answer_histories, centre_cross_entropy, centre_head
from cotgen.train.judge.metrics import balanced_accuracy
from cotgen.train.judge.model import UNREAD_KEY, build_judge, check_unread
from cotgen.train.judge.reading import (
    CENSUS_QUESTION,
    CENTRE_CLASSES,
    MODE,
    census_text,
    centre_targets,
    copying_census,
    holds_facts,
    judge_mode,
    reading_target,
    reading_text,
    with_skeleton,
)
from cotgen.train.judge.renders import build_renders
from cotgen.train.judge.rollouts import build_prefixes, first_records, training_prefix_records
from cotgen.train.judge.sampler import BalancedSampler
from cotgen.train.judge.tokenizer import byte_level_tokenizer, judge_corpus, world_prompts
from cotgen.world.records import all_records, is_judge_validation
from cotgen.world.render import render
from cotgen.world.sampler import sample_count_scene, sample_scene
from cotgen.world.scene import Box, Scene, ShapeObject
from cotgen.world.vocab import SHAPES

REPO = Path(__file__).resolve().parents[1]
RECORDS = {r.prompt: r for tag in TAGS for r in all_records(tag)}


@pytest.fixture(scope="module")
def tokenizer():
    return byte_level_tokenizer(judge_corpus(), JudgeModelConfig().vocab_size)


def test_tokenizer_reads_every_judge_question_word_by_word(tokenizer):
    prompts = JudgePrompts()
    vocab = tokenizer.get_vocab()
    for prompt in world_prompts():
        for template in (prompts.orm, prompts.clarity, prompts.reflection):
            question = template.format(prompt=prompt)
            ids = tokenizer.encode(question, add_special_tokens=False)
            assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids
            assert tokenizer.decode(ids) == question
        for word in prompt.split():  # every world word is one token, after a space as in the questions
            assert "Ġ" + word in vocab, word
    answers = answer_tokens(tokenizer)
    for word in ("yes", "no"):  # the assistant's answer opens its turn: no leading space
        (token,) = tokenizer.encode(word, add_special_tokens=False)
        assert token in getattr(answers, word)


def test_embedded_judge_sees_a_world_image_as_64_tokens_and_stays_small():
    judge = build_judge()
    image = render(sample_scene(RECORDS["a photo of a red square"], 0))
    inputs = judge.encode([image], [JudgePrompts().orm.format(prompt="a photo of a red square")])
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]  # 64×64 kept, 8 px patches
    assert (inputs["input_ids"] == judge.model.config.image_token_id).sum() == 64  # one token per patch
    assert judge.model.config.vision_config.patch_size == judge.processor.image_processor.patch_size
    assert sum(p.numel() for p in judge.model.parameters()) * 4 <= 25e6  # safetensors in float32
    assert 0.0 <= judge.p_yes([image], ["yes"]).item() <= 1.0


def check_labels(examples: ExampleSet) -> None:
    train_prompts = {r.prompt for r in training_records()}
    for example in examples.examples:
        assert example.prompt in train_prompts  # no held-out combination reaches a training question
        assert example.question == JudgePrompts().orm.format(prompt=example.prompt)
        with Image.open(examples.folder / example.image) as image:
            verdict = evaluate_image(image.convert("RGB"), RECORDS[example.prompt])
        assert example.answer == ("yes" if verdict.correct else "no"), example
        assert example.reasons == verdict.reasons
    assert {e.answer for e in examples.examples} == {"yes", "no"}


def test_render_examples_are_labelled_by_the_evaluator_and_cached(tmp_path):
    prompts = JudgePrompts()
    examples = cached(tmp_path / "renders", {"n": 24}, lambda f: build_renders(f, 24, 0, 0.5, 2, prompts))
    assert len(examples) == 24 * 3
    assert {e.source for e in examples.examples} >= {"render", "broken", "render/swap", "broken/swap"}
    check_labels(examples)
    again = cached(tmp_path / "renders", {"n": 24}, lambda f: pytest.fail("rebuilt a complete folder"))
    assert again.examples == examples.examples
    same_seed = cached(tmp_path / "renders-again", {"n": 24}, lambda f: build_renders(f, 24, 0, 0.5, 2, prompts))
    assert [e.answer for e in same_seed.examples] == [e.answer for e in examples.examples]


def test_generated_examples_are_labelled_by_the_evaluator(tmp_path):
    prompts = JudgePrompts()
    examples = cached(tmp_path, {}, lambda f: build_generated(f, 8, 0, 2, "embedded", 8, prompts, False))
    assert sum(e.source == "generated" for e in examples.examples) == 8
    check_labels(examples)


def test_prefixes_are_labelled_from_real_rollouts(tmp_path):
    """The first rollout of a prefix is the path's own continuation, so it must equal the path
    generated alone; every label must follow from the rollouts' verdicts."""
    from cotgen.generate import PathKey, load_engine
    from cotgen.models.janus import generation_prompt_ids
    from cotgen.train.judge.rollouts import first_clear_step, prefix_examples, prefix_rollouts

    records = [RECORDS["a photo of a red circle"], RECORDS["a photo of two circles"], RECORDS["a photo of a square"]]
    prefixes = list(prefix_rollouts(records, rollouts=3, seed=5, generator="embedded", batch=6))
    engine, tokenizer = load_engine("embedded")
    steps = len(engine.step_rows()) - 1
    assert sorted((p.record, p.step) for p in prefixes) == [(i, s) for i in range(3) for s in range(1, steps + 1)]
    for i, record in enumerate(records):
        state = engine.start([generation_prompt_ids(tokenizer, record.prompt)], [PathKey(5, f"prefix/{i}", 0)])
        previews = []
        for _ in range(steps):
            engine.step(state)
            previews.append(engine.preview(state)[0])
        alone = evaluate_image(engine.finish(state)[1][0], record).correct
        for p in (p for p in prefixes if p.record == i):
            # same tokens; the VQ decoder's float rounding may differ by a level between batch sizes
            assert np.abs(np.asarray(p.preview, dtype=int) - np.asarray(previews[p.step - 1], dtype=int)).max() <= 2
            assert len(p.passes) == 3 and p.passes[0] == alone
            assert torch.equal(p.tokens.cpu(), state.tokens[0, : p.tokens.numel()].cpu())  # the prefix's own tokens
    # until_clear: each path stops at its first step whose first two rollouts agree, same verdicts
    stopped = list(prefix_rollouts(records, rollouts=3, seed=5, generator="embedded", batch=6, until_clear=2))
    full = {(p.record, p.step): p.passes for p in prefixes}
    for i in range(3):
        mine = [p for p in stopped if p.record == i]
        clear = [s for s in range(1, steps + 1) if len(set(full[i, s][:2])) == 1]
        assert [p.step for p in mine] == list(range(1, (clear[0] if clear else steps) + 1))
        assert all(p.passes == full[i, p.step] for p in mine)
    # last_step: no path goes past it, the same prefixes as the full run's up to there
    first = list(prefix_rollouts(records, rollouts=3, seed=5, generator="embedded", batch=6, last_step=1))
    assert [(p.record, p.step, p.passes) for p in first] == [(i, 1, full[i, 1]) for i in range(3)]
    prompts = JudgePrompts()
    examples = []
    for p in prefixes:
        made = {e.task: e for e in prefix_examples(p, records[p.record], f"images/{p.record:05d}_s{p.step}.png", "prefix", prompts)}
        assert made["prm"].answer == ("yes" if any(p.passes) else "no")
        assert made["prm"].question == prompts.orm.format(prompt=records[p.record].prompt)
        assert made["clarity"].answer == ("yes" if len(set(p.passes)) == 1 else "no")
        if len(set(p.passes)) == 1:
            assert made["potential"].answer == ("yes" if p.passes[0] else "no")
            assert made["potential"].history == ((made["clarity"].question, "yes"),)
        else:
            assert "potential" not in made
        examples += made.values()
    first = first_clear_step(examples)
    clear_paths = {p.record for p in prefixes if len(set(p.passes)) == 1}
    assert len(first) == len(clear_paths)
    for index in first:
        record = int(examples[index].image[7:12])
        assert examples[index].source == f"prefix/step{min(p.step for p in prefixes if p.record == record and len(set(p.passes)) == 1)}"


def test_sampler_balances_answers_within_each_tag():
    skewed = [Example("x.png", "q", "no", "position", "p")] * 95 + [Example("x.png", "q", "yes", "position", "p")] * 5
    skewed += [Example("x.png", "q", "yes", "single_object", "p")] * 60 + [Example("x.png", "q", "no", "single_object", "p")] * 40
    draws = BalancedSampler([(ExampleSet(Path("."), skewed), 1.0)], np.random.default_rng(0)).draw(4000)
    for tag in ("position", "single_object"):
        answers = [e.answer for _, e in draws if e.tag == tag]
        assert abs(len(answers) / len(draws) - 0.5) < 0.05
        assert abs(answers.count("yes") / len(answers) - 0.5) < 0.05


def test_tag_weights_draw_a_tag_that_many_times_as_often_and_keep_answers_balanced():
    mixed = [Example("x.png", "q", a, tag, "p") for tag in ("position", "counting", "colors") for a in ("yes", "no") for _ in range(10)]
    examples = ExampleSet(Path("."), mixed)
    draws = BalancedSampler([(examples, 1.0)], np.random.default_rng(0), {"counting": 3.0, "colors": 0.5}).draw(6000)
    share = {tag: sum(e.tag == tag for _, e in draws) / len(draws) for tag in ("position", "counting", "colors")}
    assert share == pytest.approx({"position": 1 / 4.5, "counting": 3 / 4.5, "colors": 0.5 / 4.5}, abs=0.02)
    counting = [e.answer for _, e in draws if e.tag == "counting"]
    assert abs(counting.count("yes") / len(counting) - 0.5) < 0.03
    # no weights: the same draws as a sampler that never had them (earlier runs' batches are kept)
    plain = BalancedSampler([(examples, 1.0)], np.random.default_rng(1)).draw(50)
    assert plain == BalancedSampler([(examples, 1.0)], np.random.default_rng(1), {}).draw(50)
    assert {e.tag for _, e in plain} == {"position", "counting", "colors"}


def test_bad_tag_weights_are_rejected():
    with pytest.raises(InputError, match="tag_weights: unknown tag 'count'"):
        TrainJudgeConfig(tag_weights={"count": 2.0})
    with pytest.raises(InputError, match=r"tag_weights.counting: must be above 0, got 0"):
        TrainJudgeConfig(tag_weights={"counting": 0})
    with pytest.raises(InputError, match="tag_weights: unknown tag 'count'"):
        AnswerStageConfig(tag_weights={"count": 2.0})
    weighted = TrainJudgeConfig(tag_weights={"counting": 3.0}, continuations=[AnswerStageConfig(tag_weights={"position": 2.0})])
    assert [s.tag_weights for s in weighted.stages()] == [{"counting": 3.0}, {"position": 2.0}]
    assert weighting(weighted.tag_weights) == "; tags drawn counting ×3" and weighting({}) == ""  # the card's words


def test_the_validation_set_holds_new_images_of_training_split_prompts(tmp_path):
    """Where settings are chosen: the generator's images of training-split records (never the
    held-out ones), labelled by the evaluator, none of them an image of the training sets."""
    data = JudgeDataConfig(generator_batch=8)
    validation = build_validation(tmp_path, data, 0, 6)
    assert len(validation) == 6 and {e.source for e in validation.examples} == {"validation"}
    check_labels(validation)  # training-split prompts, the evaluator's labels
    train = cached(tmp_path / "generated", {}, lambda f: build_generated(f, 6, 0, 0, "embedded", 8, JudgePrompts(), False))
    seen = {np.asarray(train.image(e.image)).tobytes() for e in train.examples}
    assert not {np.asarray(validation.image(e.image)).tobytes() for e in validation.examples} & seen
    assert build_validation(tmp_path, data, 0, 6).examples == validation.examples  # cached


def test_the_validation_prefixes_are_new_paths_of_the_validation_records(tmp_path):
    """Where potential is chosen: prefixes of the validation set's training-split records, on paths of
    another seed than the training prefixes', with every prefix task."""
    data = JudgeDataConfig(generator_batch=8, prefix_rollouts=2)
    prefixes = build_validation_prefixes(tmp_path, data, 0, 3)
    records = validation_records(3, 0)
    assert {e.prompt for e in prefixes.examples} <= {r.prompt for r in records} <= {r.prompt for r in training_records()}
    assert {e.source.split("/")[0] for e in prefixes.examples} == {"validation"} and {"prm", "clarity"} <= {e.task for e in prefixes.examples}
    train = cached(tmp_path / "prefixes", {}, lambda f: build_prefixes(f, records, 2, 0, "embedded", 8, "prefix", JudgePrompts(), False))
    assert {np.asarray(prefixes.image(e.image)).tobytes() for e in prefixes.examples}.isdisjoint(
        np.asarray(train.image(e.image)).tobytes() for e in train.examples
    )  # the same records, other paths
    assert build_validation_prefixes(tmp_path, data, 0, 3).examples == prefixes.examples  # cached


def test_a_stage_can_keep_the_prefixes_of_the_first_records_when_the_prefix_data_grows(tmp_path):
    prompts, one_path = JudgePrompts(), 2  # batch = rollouts: a path per batch, as in any larger set
    records = training_prefix_records(2, 0)
    small = cached(tmp_path / "small", {}, lambda f: build_prefixes(f, records[:1], 2, 0, "embedded", one_path, "prefix", prompts, False))
    large = cached(tmp_path / "large", {}, lambda f: build_prefixes(f, records, 2, 0, "embedded", one_path, "prefix", prompts, False))
    assert first_records(large, 1).examples == small.examples and len(large) > len(small)
    assert first_records(large, 0) is large
    assert TrainJudgeConfig(prefix_subset=300, continuations=[AnswerStageConfig(prefix_subset=300), AnswerStageConfig()]).stages()[0].prefix_subset == 300
    with pytest.raises(InputError, match=r"answer stage 2: prefix_subset 400 exceeds data.prefix_records \(300\)"):
        TrainJudgeConfig(continuations=[AnswerStageConfig(prefix_subset=400)])
    with pytest.raises(InputError, match="prefix_subset: must be at least 0"):
        TrainJudgeConfig(prefix_subset=-1)


def test_held_out_sets_follow_their_own_seed_and_a_finished_set_is_never_overwritten(tmp_path):
    tiny = {"render_images": 4, "generated_images": 3, "swaps": 0, "heldout_records": 6, "heldout_samples": 1,
            "generator_batch": 8, "prefix_records": 1, "prefix_rollouts": 2, "heldout_prefix_records": 1}  # fmt: skip

    def images(examples: ExampleSet) -> list[bytes]:
        return [np.asarray(examples.image(e.image)).tobytes() for e in examples.examples]

    def sets(folder: Path, cfg: TrainJudgeConfig) -> dict[str, list[bytes]]:
        return {name: images(examples) for name, examples in build_dataset(folder, cfg.data, cfg.training_seed).sets().items()}

    run = sets(tmp_path / "run", TrainJudgeConfig(data=JudgeDataConfig(**tiny)))
    # another run seed on the same folder, training sets seeded as before: everything is shared
    assert sets(tmp_path / "run", TrainJudgeConfig(seed=3, data=JudgeDataConfig(**tiny, seed=0))) == run
    fresh = sets(tmp_path / "fresh", TrainJudgeConfig(data=JudgeDataConfig(**tiny, seed=7)))
    for name in ("renders", "generated", "prefixes"):
        assert set(run[name]).isdisjoint(fresh[name]), name
    for name in ("heldout", "heldout_prefixes"):
        assert run[name] == fresh[name], name
    # fresh training sets asked of the first run's folder: refused, its images untouched
    with pytest.raises(InputError, match=r"run/renders: holds a finished set made with other settings \(seed: 0 → 7\); delete the folder"):
        sets(tmp_path / "run", TrainJudgeConfig(data=JudgeDataConfig(**tiny, seed=7)))
    assert sets(tmp_path / "run", TrainJudgeConfig(data=JudgeDataConfig(**tiny))) == run
    with pytest.raises(InputError, match=r"data.seed: 1 is data.heldout_seed \+ 1, the seed of the validation images"):
        TrainJudgeConfig(data=JudgeDataConfig(seed=1))
    with pytest.raises(InputError, match=r"seed: 3 is data.heldout_seed \+ 1"):
        TrainJudgeConfig(seed=3, data=JudgeDataConfig(heldout_seed=2))


def test_cell_targets_name_the_object_in_each_visual_token():
    scene = Scene(64, (ShapeObject("circle", "red", Box(2, 2, 22, 22)), ShapeObject("cross", "blue", Box(40, 36, 62, 58))))
    colors, shapes = cell_targets(scene, cells=4)  # 16-px cells, row-major
    named = {(CELL_COLORS[c], CELL_SHAPES[k]) for c, k in zip(colors, shapes)}
    assert named == {("none", "none"), ("red", "circle"), ("blue", "cross")}
    assert (CELL_COLORS[colors[0]], CELL_SHAPES[shapes[0]]) == ("red", "circle")  # top left
    assert (CELL_COLORS[colors[15]], CELL_SHAPES[shapes[15]]) == ("blue", "cross")  # bottom right
    assert CELL_COLORS[colors[3]] == "none" and CELL_COLORS[colors[12]] == "none"
    assert all((c == 0) == (k == 0) for c, k in zip(colors, shapes))


def test_centre_targets_name_what_is_centred_in_each_visual_token():
    objects = (ShapeObject("circle", "red", Box(2, 2, 22, 22)), ShapeObject("cross", "blue", Box(40, 36, 62, 58)))
    reading = Reading(objects, (Box(20, 40, 30, 50),))
    targets = centre_targets(reading, cells=8, size=64)  # 8-px cells, row-major
    assert targets[1 * 8 + 1] == CENTRE_CLASSES.index("red circle")  # centre (12, 12)
    assert targets[5 * 8 + 6] == CENTRE_CLASSES.index("blue cross")  # centre (51, 47)
    assert targets[5 * 8 + 3] == CENTRE_CLASSES.index("blob")  # centre (25, 45)
    assert sum(t > 0 for t in targets) == 3


def test_a_reading_states_what_the_evaluator_checks_for_the_prompt():
    # two circles, the blue one larger (first in confidence order); a green square right of both
    objects = (
        ShapeObject("circle", "red", Box(2, 2, 20, 20)),
        ShapeObject("circle", "blue", Box(4, 36, 28, 60)),
        ShapeObject("square", "green", Box(40, 20, 62, 42)),
    )
    reading = Reading(objects, ())
    assert reading_text(reading, RECORDS["a photo of two circles"]) == "circle: 2, blue, red"
    assert reading_text(reading, RECORDS["a photo of a red circle"]) == "circle: 2, blue, red"
    left = RECORDS["a photo of a circle left of a square"]
    assert reading_text(reading, left) == "square: 1, green; circle: 2, blue, red; circle is left of square"
    above = RECORDS["a photo of a circle above a square"]
    assert reading_text(reading, above) == "square: 1, green; circle: 2, blue, red; circle is not above square"
    assert reading_target(reading, RECORDS["a photo of a cross"], "no") == "cross: none. answer: no"
    # what the judge writes never starts with an answer word, so its direct answers stay apart
    assert not reading_target(reading, left, "yes").startswith(("yes", "no"))
    # a census reading: every class's count whatever the prompt names, then the prompt's relation
    census = "circle: 2, blue, red; square: 1, green; triangle: none; diamond: none; cross: none; circle is left of square"
    assert reading_text(reading, left, every_class=True) == census
    assert reading_target(reading, RECORDS["a photo of a cross"], "no", every_class=True).endswith("cross: none. answer: no")
    # it states every fact the prompt's reading does, and more; a wrong count does not
    assert holds_facts(census, reading_text(reading, left)) and holds_facts(reading_text(reading, left), reading_text(reading, left))
    assert not holds_facts(census.replace("circle: 2", "circle: 3"), reading_text(reading, left))
    # the census reads every class, whatever the prompt: each image teaches all its objects' counts
    assert census_text(reading) == "circle: 2, blue, red; square: 1, green; triangle: none; diamond: none; cross: none."


def test_the_census_question_is_in_words_the_judge_already_has(tokenizer):
    vocab = tokenizer.get_vocab()
    # the shipped judge's tokenizer learns it without a new tokenizer: each word after the first is one token
    assert all("Ġ" + word.strip(",?") in vocab for word in CENSUS_QUESTION.split()[1:])


def test_a_share_of_the_outcome_questions_is_taught_after_the_true_census(tmp_path):
    scene = sample_scene(RECORDS["a photo of two circles"], np.random.default_rng(3))
    render(scene).save(tmp_path / "a.png")
    prompt, prompts = "a photo of two circles", JudgePrompts()
    clarity = (prompts.clarity.format(prompt=prompt), "yes")
    examples = [
        Example("a.png", prompts.orm.format(prompt=prompt), "yes", "counting", prompt, task="orm"),
        Example("a.png", prompts.orm.format(prompt=prompt), "yes", "counting", prompt, task="prm"),
        Example("a.png", clarity[0], "yes", "counting", prompt, task="clarity"),
        Example("a.png", prompts.potential, "yes", "counting", prompt, task="potential", history=(clarity,)),
    ]
    images = ExampleSet(tmp_path, examples)
    batch = [(images, e) for e in examples]
    census = (CENSUS_QUESTION, census_text(read_scene(render(scene))))
    assert census[1].startswith("circle: 2, ")
    turns = np.random.default_rng(0)
    assert answer_histories(batch, 0.0, turns) == [(), (), (), (clarity,)]
    assert turns.random() == np.random.default_rng(0).random()  # a share of 0 draws nothing: batches as before
    assert answer_histories(batch, 1.0, turns) == [(census,), (census,), (), (clarity,)]
    # about that share of the outcome questions
    after = [h != () for _ in range(100) for h in answer_histories(batch[:1] * 10, 0.25, turns)]
    assert 0.2 < np.mean(after) < 0.3
    assert judge_mode(True, False, True).first == CENSUS_QUESTION and judge_mode(True, False, False) == MODE
    assert judge_mode(True, False, False, skeleton=True) == with_skeleton(MODE)
    assert judge_mode(True, False, False, copy_census=True) == copying_census(MODE)
    assert judge_mode(True, False, False, copy_census=True, rule_reasons=True) == replace(copying_census(MODE), rule_reasons=True)
    assert judge_mode(True, False, False, rule_verdict=True) == replace(MODE, rule_verdict=True)
    assert judge_mode(False, False, False) is None


def test_balanced_accuracy():
    result = balanced_accuracy([0.9, 0.2, 0.6, 0.1], ["yes", "yes", "no", "no"])
    assert result["tpr"] == 0.5 and result["tnr"] == 0.5 and result["balanced"] == 0.5 and result["positives"] == 2
    assert balanced_accuracy([0.1], ["no"])["tpr"] is None


def test_bad_data_settings_are_rejected():
    with pytest.raises(ValueError, match="generated_share"):
        JudgeDataConfig(generated_share=1.5)
    with pytest.raises(ValueError, match="generated_share \\+ prefix_share"):
        JudgeDataConfig(generated_share=0.8, prefix_share=0.3)
    with pytest.raises(ValueError, match="prefix_rollouts"):
        JudgeDataConfig(prefix_rollouts=1)


def run_job(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / "train_judge.py"), *args],
        capture_output=True, text=True, cwd=REPO, timeout=480, check=False,
    )


def card_row(card: str, first: str) -> list[str]:
    """The cells after the first of the first Markdown table row that starts with `first`."""
    for line in card.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            return cells[1:]
    raise AssertionError(f"no table row starting with {first!r} in the card")


TINY_RUN = [
    "seed=2", "threads=1", "batch_size=8", "eval_every=3", "log_every=1",
    "data.render_images=24", "data.generated_images=8", "data.heldout_records=12", "data.heldout_samples=1",
    "data.generator_batch=12", "data.prefix_records=4", "data.heldout_prefix_records=6", "data.prefix_rollouts=2",
    "prefix_subset=0", "reflection_share=0.3", "reflection_eval=3", "census_share=0.3",
    "reflection_reads=true", "census_turn=0.5", "data.compositional=true", "skeleton=true",
    "data.census_scenes=6", "data.census_scene_share=0.5", "then=null",
]  # fmt: skip
FIRST_STAGE = ["vision.steps=3", "steps=4"]
CONTINUATION = {"lr": 0.0005, "warmup_steps": 2, "steps": 3}
CONTINUATION_VISION = {"minutes": 5, "steps": 2}  # a vision stage for the continuation's fresh head


def train_tiny(out: Path, *overrides: str) -> None:
    done = run_job("--config", str(REPO / "jobs" / "configs" / "judge.yaml"), f"out={out}", *TINY_RUN, *overrides)
    assert done.returncode == 0, done.stderr[-3000:]


def test_train_judge_job_end_to_end(tmp_path):
    out = tmp_path / "run"
    # the first answer stage, then a continuation with its own schedule, in one command
    continuation = CONTINUATION | {f"vision_{k}": v for k, v in CONTINUATION_VISION.items()}
    train_tiny(out, *FIRST_STAGE, f"continuations=[{json.dumps(continuation)}]")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any(r.get("stage") == "vision" and "images_exact" in r for r in log)
    assert any(r.get("stage") == "answers" and "loss" in r for r in log)
    assert log[-1]["stage"] == "final" and log[-1]["steps"] >= 1
    assert {"orm", "prm", "clarity", "potential", "potential_first_clear_tag_mean"} <= set(log[-1])
    assert log[-1]["reflection_steps"] >= 1 and any("reflection_loss" in r for r in log)
    assert log[-1]["census_steps"] >= 1 and any("census_loss" in r for r in log)
    assert log[-1]["reflection_steps"] + log[-1]["census_steps"] < log[-1]["steps"]  # answers were trained too
    assert {"reflection_reason_recall", "reflection_says_no", "reflection_says_yes"} <= set(log[-1])
    assert any(r.get("stage") == "answers" and "reflection_reason_recall" in r for r in log)  # periodic too
    card = (out / "judge" / "README.md").read_text()
    stage = json.loads((out / "judge" / "stage.json").read_text())
    # the card reports what was measured: each task's pooled balanced accuracy, and ORM's per tag
    for task, result in stage["heldout"].items():
        assert card_row(card, task)[2] == rate(result["overall"]["balanced"]), task
    orm = stage["heldout"]["orm"]
    assert orm["overall"]["n"] == 12 and card_row(card, "**overall**")[:2] == ["12", str(orm["overall"]["positives"])]
    for tag in TAGS:
        if tag in orm:
            assert card_row(card, tag)[-1] == rate(orm[tag]["balanced"]), tag
    assert "on 30% of the answer-stage steps" in card and "not trained" not in card and "after its reading of the image" in card
    assert card_row(card, "of which the census")[:2] == [str(stage["census_steps"]), str(8 * stage["census_steps"])]
    assert "(50% of them on 6 renders of prompt-free count scenes)" in card_row(card, "of which the census")[-1]
    assert len(ExampleSet.load(out / "data" / "census_scenes")) == 6
    reflections = stage["heldout_reflections"]
    assert reflections["wrong"] + reflections["right"] <= 6 and len(reflections["samples"]) <= 4
    assert card_row(card, rate(reflections["reason_recall"]))[:2] == [rate(reflections["says_no"]), rate(reflections["says_yes"])]
    assert (out / "config.yaml").is_file()
    judge = load_judge(out / "judge")
    image = render(sample_scene(RECORDS["a photo of two circles"], np.random.default_rng(1)))
    question = JudgePrompts().orm.format(prompt="a photo of two circles")
    assert judge.encode([image], [question])["image_grid_thw"].tolist() == [[1, 8, 8]]  # the processor came back
    # it reads before it answers the outcome question, after it has asked itself the census, with the
    # question's classes forced into its reading
    assert judge.reading == judge_mode(True, False, True, skeleton=True) and judge.reading.max_tokens == MODE.max_tokens
    assert "circle" in judge.reading.subjects
    assert "asks itself the census" in card and "50% of its outcome examples" in card
    assert trained_on(out / "judge") == {"name": "embedded", "digest": weights_digest("embedded", "generator")}
    # trained without the judge-validation combinations, and says so (a later run may continue it: below)
    assert json.loads((out / "judge" / "config.json").read_text())[UNREAD_KEY] is True
    assert "Trained without the prompts that name a judge-validation combination (class pairs circle–square;" in card
    p = judge.p_yes([image], [question])
    assert p.shape == (1,) and 0.0 <= p.item() <= 1.0
    assert 0.0 <= orm["readings_exact"] <= 1.0 and "orm_readings_exact" in log[-1]
    assert f"| {rate(orm['readings_exact'])} |" in card
    # steps set the stages' lengths; the log counts answer steps from the first stage's start
    assert stage["vision"]["steps"] == 3 and [p["steps"] for p in stage["parts"]] == [4, 3] and stage["steps"] == 7
    assert [r["step"] for r in log if r.get("stage") == "answers" and "lr" in r][-1] == 7
    assert card_row(card, "answers, part 2")[:2] == ["3", "24"] and "after a vision stage of 2 steps" in card

    # the same judge as two runs, the second continuing the first (init_from) on the same data (the
    # first's folder linked in, the second's named by data_from)
    (tmp_path / "first").mkdir()
    (tmp_path / "first" / "data").symlink_to(out / "data")
    # one stage each (judge.yaml lists a continuation), and fewer evaluations: they must not change what is trained
    quick = ["continuations=[]", "eval_every=1000", "reflection_eval=0"]
    train_tiny(tmp_path / "first", *FIRST_STAGE, *quick)
    again = [f"{k}={v}" for k, v in CONTINUATION.items()] + [f"vision.{k}={v}" for k, v in CONTINUATION_VISION.items()]
    # the second also fits a where head and a count head after training, which change none of the judge's weights
    heads = ["rule_where=true", "rule_count=true"]
    train_tiny(tmp_path / "second", f"init_from={tmp_path / 'first' / 'judge'}", f"data_from={out / 'data'}", *again, *quick, *heads)
    assert not (tmp_path / "second" / "data").exists()
    one, two = (load_file(folder / "judge" / "model.safetensors") for folder in (out, tmp_path / "second"))
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    assert not (out / "judge" / HEAD_FILE).exists() and (tmp_path / "second" / "judge" / HEAD_FILE).is_file()
    placing = load_judge(tmp_path / "second" / "judge")
    assert placing.reading.rule_where and placing.where.classes == list(CENTRE_CLASSES)
    assert placing.reading.rule_count and placing.count.classes == list(SHAPES)
    assert "**places the objects**" in (tmp_path / "second" / "judge" / "README.md").read_text()
    assert "**counts with its count head**" in (tmp_path / "second" / "judge" / "README.md").read_text()


def test_bad_reflection_settings_are_rejected():
    with pytest.raises(InputError, match=r"reflection_share: must be within \[0, 1\], got 1.5"):
        TrainJudgeConfig(reflection_share=1.5)
    with pytest.raises(InputError, match="reflection_eval: must be at least 0"):
        TrainJudgeConfig(reflection_eval=-1)
    with pytest.raises(InputError, match=r"census_share: must be within \[0, 1 - reflection_share = 0.85\], got 0.9"):
        TrainJudgeConfig(census_share=0.9)
    with pytest.raises(InputError, match="census_share: the census is a reading; it needs reads: true"):
        TrainJudgeConfig(census_share=0.1, reads=False)
    with pytest.raises(InputError, match="reading: must be one of prompt, census, got 'scene'"):
        TrainJudgeConfig(reading="scene")
    with pytest.raises(InputError, match="reading: 'census' is a reading; it needs reads: true"):
        TrainJudgeConfig(reading="census", reads=False)
    with pytest.raises(InputError, match="reflection_reads: a reflection after a reading needs reads: true"):
        TrainJudgeConfig(reflection_reads=True, reads=False)
    with pytest.raises(InputError, match=r"census_turn: must be within \[0, 1\], got 1.2"):
        TrainJudgeConfig(census_turn=1.2)
    with pytest.raises(InputError, match="census_turn: the census is a reading; it needs reads: true"):
        TrainJudgeConfig(census_turn=0.5, reads=False)
    with pytest.raises(InputError, match="skeleton: forces the question's classes"):
        TrainJudgeConfig(skeleton=True, reading="census")
    with pytest.raises(InputError, match="copy_census: copies the census into a reading of the prompt's classes"):
        TrainJudgeConfig(copy_census=True)
    with pytest.raises(InputError, match="copy_census: copies the census"):
        TrainJudgeConfig(copy_census=True, census_share=0.2, census_turn=0.5)
    assert "**copies** the facts of the question's classes" in census_first_text(TrainJudgeConfig(copy_census=True, census_share=0.2))
    with pytest.raises(InputError, match="rule_reasons: works on the facts of a reading; it needs reads: true"):
        TrainJudgeConfig(rule_reasons=True, reads=False)
    with pytest.raises(InputError, match="rule_verdict: works on the facts of a reading; it needs reads: true"):
        TrainJudgeConfig(rule_verdict=True, reads=False)
    with pytest.raises(InputError, match="rule_where: forces a relation into the reading's skeleton"):
        TrainJudgeConfig(rule_where=True)
    with pytest.raises(
        InputError, match="rule_count: forces counts into the reading's skeleton and is fitted on count scenes"
    ):
        TrainJudgeConfig(rule_count=True, copy_census=True, census_share=0.2)
    assert "**answers by rule**" in card.reading_text(TrainJudgeConfig(rule_verdict=True))
    assert "**reflects by rule**" in reflection_text(TrainJudgeConfig(rule_reasons=True))
    assert "by rule" not in reflection_text(TrainJudgeConfig())
    with pytest.raises(InputError, match="data.census_scenes, data.census_counting_images: they train the census; they need census_share above 0"):
        TrainJudgeConfig(data=JudgeDataConfig(census_scenes=10))
    with pytest.raises(InputError, match=r"census_scene_share: must be within \[0, 1\], got 2"):
        JudgeDataConfig(census_scene_share=2)
    with pytest.raises(InputError, match="census_scenes: must be at least 0, got -1"):
        JudgeDataConfig(census_scenes=-1)


def test_count_scenes_teach_the_census_of_every_class_at_every_count(tmp_path):
    """The census scenes: prompt-free renders answered with the evaluator's census of the image, each
    count of a class as often, never more objects than a counting prompt asks for."""
    scenes = [sample_count_scene(i) for i in range(400)]
    counts = [Counter(o.cls for o in scene.objects) for scene in scenes]
    assert max(len(scene.objects) for scene in scenes) == 4
    assert {(cls, n) for c in counts for cls, n in c.items()} == {(cls, n) for cls in SHAPES for n in range(1, 5)}
    first = Counter(len(scene.objects) for scene in scenes if len({o.cls for o in scene.objects}) == 1)
    assert set(first) == {1, 2, 3, 4} and min(first.values()) > 30
    (tmp_path / "images").mkdir()
    examples = list(build_census_scenes(tmp_path, 5, 3, 0.5))
    images = ExampleSet(tmp_path, examples)
    assert [e.image for e in examples] == [f"images/{i:06d}.png" for i in range(5)]
    for e in examples:
        assert (e.task, e.question, e.prompt) == ("census", CENSUS_QUESTION, "")
        assert e.answer == census_text(images.reading(e.image))
    # the census batch: each side draw kept, or with the share's chance a count scene instead
    side = [(images, Example("x.png", "q", "yes", "counting", "p"))] * 200
    rng = np.random.default_rng(0)
    assert draw_census_batch(side, [], 0.5, rng) == side and draw_census_batch(side, [images], 0.0, rng) == side
    mixed = draw_census_batch(side, [images], 0.5, rng)
    assert 0.4 < np.mean([e.task == "census" for _, e in mixed]) < 0.6
    assert {e.image for _, e in mixed if e.task == "census"} == {e.image for e in examples}


def test_count_scenes_may_spoil_an_object_into_a_blob_that_the_census_does_not_count(tmp_path):
    """`census_scene_spoils`: some count scenes hold an object cut by the frame, two-coloured or run
    into another, answered as the evaluator reads them (a blob counts as no object); without spoils,
    the same scenes as before."""
    for folder in ("plain", "spoilt", "again"):
        (tmp_path / folder / "images").mkdir(parents=True)
    plain = list(build_census_scenes(tmp_path / "plain", 60, 3, 0.0))
    spoiled = list(build_census_scenes(tmp_path / "spoilt", 60, 3, 0.0, spoil_rate=1.0))
    assert list(build_census_scenes(tmp_path / "again", 60, 3, 0.0, spoil_rate=0.0)) == plain
    assert all((tmp_path / "again" / e.image).read_bytes() == (tmp_path / "plain" / e.image).read_bytes() for e in plain)
    sets = [ExampleSet(tmp_path / name, examples) for name, examples in (("plain", plain), ("spoilt", spoiled))]
    blobs = [[len(images.reading(e.image).blobs) for e in images.examples] for images in sets]
    assert sum(blobs[0]) == 0 and sum(b > 0 for b in blobs[1]) >= 20
    for e in spoiled:
        assert e.answer == census_text(sets[1].reading(e.image))
    # a clean two-object scene, spoilt: often a blob where an object was (a cut may leave too little
    # to see, or a shape still named)
    rng = np.random.default_rng(0)
    scene = Scene(64, (ShapeObject("square", "red", Box(10, 10, 28, 28)), ShapeObject("circle", "blue", Box(36, 36, 54, 54))))
    assert not read_scene(render(scene)).blobs
    assert sum(bool(read_scene(spoilt(scene, rng)).blobs) for _ in range(30)) >= 12
    with pytest.raises(InputError, match="census_scene_spoils: must be within"):
        JudgeDataConfig(census_scene_spoils=1.5)


def test_the_census_pool_may_hold_the_generators_own_counting_images(tmp_path):
    """`data.census_counting_images`: the generator's images of training-split counting records, a
    set of their own beside the count scenes, each answered with the evaluator's census of the image;
    census batches draw from both; the card says so."""
    tiny = {"render_images": 4, "generated_images": 0, "swaps": 1, "heldout_records": 1, "heldout_samples": 1,
            "generator_batch": 8, "prefix_records": 1, "prefix_rollouts": 2, "heldout_prefix_records": 1}  # fmt: skip
    data = JudgeDataConfig(**tiny, census_scenes=3, census_counting_images=5)
    made = build_dataset(tmp_path, data, 0)
    counting = made.census_counting
    assert made.census_pools() == [made.census_scenes, counting]
    assert counting.folder == tmp_path / "census_counting" and [e.source for e in counting.examples] == ["counting"] * 5
    for e in counting.examples:
        assert (e.task, e.question) == ("census", CENSUS_QUESTION)
        assert e.answer == census_text(counting.reading(e.image))
    assert sum(len(counting.reading(e.image).objects) for e in counting.examples) >= 5  # objects, not empty canvases
    # a set asked with other settings is built beside the others, which are loaded as they are
    again = build_dataset(tmp_path, replace(data, census_counting_images=0), 0)
    assert [pool.examples for pool in again.census_pools()] == [made.census_scenes.examples]
    assert again.renders.examples == made.renders.examples
    side = [(made.renders, made.renders.examples[0])] * 300
    drawn = {e.source for _, e in draw_census_batch(side, made.census_pools(), 1.0, np.random.default_rng(0))}
    assert drawn == {"scene", "counting"}
    # a compositional run's counting images leave out the records naming a judge-validation count
    assert len(counting_records()) == 10 and RECORDS["a photo of two circles"] in counting_records()
    assert {r.prompt for r in counting_records()} - {r.prompt for r in counting_records(compositional=True)} == {
        "a photo of two circles", "a photo of four triangles"
    }
    cfg = TrainJudgeConfig(census_share=0.2, data=data)
    assert "3 renders of prompt-free count scenes and 5 generator images of training-split counting records" in census_row({"census_steps": 3}, cfg)
    with pytest.raises(InputError, match="census_counting_images: must be at least 0, got -2"):
        JudgeDataConfig(census_counting_images=-2)
    with pytest.raises(InputError, match="they need census_share above 0"):
        TrainJudgeConfig(data=JudgeDataConfig(census_counting_images=4))


def test_a_compositional_run_leaves_the_judge_validation_prompts_out_and_continues_no_judge_that_read_them(tmp_path):
    tiny = {"render_images": 60, "generated_images": 0, "swaps": 1, "heldout_records": 1, "heldout_samples": 1,
            "generator_batch": 8, "prefix_records": 1, "prefix_rollouts": 2, "heldout_prefix_records": 1}  # fmt: skip
    everything = build_dataset(tmp_path, JudgeDataConfig(**tiny), 0).renders.examples
    kept = build_dataset(tmp_path, JudgeDataConfig(**tiny, compositional=True), 0).renders.examples  # the same folder
    names = [is_judge_validation(RECORDS[e.prompt]) for e in everything]
    assert any(names) and not all(names)
    assert kept == [e for e, named in zip(everything, names) if not named]
    records = compositional_validation_records(10, 0)
    assert all(is_judge_validation(r) for r in records)
    assert Counter(r.tag for r in records) == {tag: 2 for tag in ("two_object", "counting", "colors", "position", "color_attr")}
    with pytest.raises(InputError, match="data.compositional: init_from embedded has read the judge-validation combinations"):
        check_unread(True, "embedded")
    check_unread(False, "embedded")


def test_train_judge_job_rejects_an_unknown_field(tmp_path):
    done = run_job(f"out={tmp_path}", "data.colour_rate=0.5")
    assert done.returncode == 2
    assert "data.colour_rate" in done.stderr and "unknown field" in done.stderr


def test_a_description_is_the_evaluators_reading_in_reading_order():
    # blue cross centred at (51, 47) is in cell row 5, column 6 of 8×8; red circle at (12, 12) in 1, 1;
    # a green square at (51, 12) in row 1, column 6: reading order is by row, then column
    objects = (
        ShapeObject("cross", "blue", Box(40, 36, 62, 58)),
        ShapeObject("square", "green", Box(40, 2, 62, 22)),
        ShapeObject("circle", "red", Box(2, 2, 22, 22)),
    )
    reading = read_scene(render(Scene(64, objects)))
    assert describe(reading) == "red circle at 1 1, green square at 6 1, blue cross at 6 5"
    assert describe_target(reading, "no") == "red circle at 1 1, green square at 6 1, blue cross at 6 5. answer: no"
    assert describe(read_scene(render(Scene(64, ())))) == "nothing"


def test_bad_stage_settings_are_rejected():
    with pytest.raises(InputError, match="steps: must be at least 0"):
        TrainJudgeConfig(steps=-1)
    with pytest.raises(InputError, match="minutes and lr: must be positive"):
        AnswerStageConfig(lr=0)
    with pytest.raises(InputError, match="vision_minutes and vision_steps: must be at least 0"):
        AnswerStageConfig(vision_steps=-1)
    with pytest.raises(InputError, match="vision.minutes and vision.steps"):
        VisionConfig(steps=-2)
    with pytest.raises(InputError, match="centre_head: must be one of linear, words, got 'tied'"):
        TrainJudgeConfig(centre_head="tied")
    # whichever of the clock and the steps ends first ends a stage; 0 minutes end it at once
    budget = Budget(minutes=1, steps=10)
    assert budget.done(10, 5) and budget.done(3, 60) and not budget.done(9, 59) and budget.progress(5, 15) == 0.5
    assert Budget(minutes=0).done(0, 0)
    stages = TrainJudgeConfig(minutes=3, lr=0.002, continuations=[AnswerStageConfig(steps=5)]).stages()
    assert [(s.minutes, s.steps, s.lr) for s in stages] == [(3, 0, 0.002), (30.0, 5, 5e-4)]


def test_a_word_tied_head_scores_visual_tokens_against_the_words_a_reading_writes():
    judge = build_judge()
    head = centre_head(judge, tied=True)
    embed = judge.model.get_input_embeddings()
    word = {w: judge.processor.tokenizer.encode(" " + w, add_special_tokens=False)[0] for w in ("red", "circle", "none")}
    with torch.no_grad():
        tokens = torch.stack([embed.weight[word["red"]] + embed.weight[word["circle"]], 2 * embed.weight[word["none"]]])
    logits = head(tokens)
    assert logits.shape == (2, len(CENTRE_CLASSES))
    assert [CENTRE_CLASSES[i] for i in logits.argmax(-1)] == ["red circle", "none"]
    # the words' embeddings learn from the head's loss, yet belong to the language model alone
    assert not any(p is embed.weight for p in head.parameters())
    centre_cross_entropy(logits, torch.tensor([CENTRE_CLASSES.index("blue square"), 0])).backward()
    assert embed.weight.grad[word["red"]].abs().sum() > 0


def test_a_recipe_chains_runs_each_continuing_the_judge_before_and_is_checked_up_front(tmp_path):
    second, third = tmp_path / "second.yaml", tmp_path / "third.yaml"
    second.write_text(f"out: {tmp_path / 'b'}\nthen: {third}\ncensus_share: 0.2\ncopy_census: true\n")
    third.write_text(f"out: {tmp_path / 'c'}\nsteps: 7\n")
    chain = recipe_chain(TrainJudgeConfig(out=str(tmp_path / "a"), then=str(second)))
    assert [c.out for c in chain] == [str(tmp_path / n) for n in "abc"]
    assert [c.init_from for c in chain[1:]] == [str(tmp_path / "a" / "judge"), str(tmp_path / "b" / "judge")]
    assert chain[1].copy_census and chain[2].steps == 7 and chain[2].then is None
    assert recipe_chain(TrainJudgeConfig()) == [TrainJudgeConfig()]
    # the shipped recipe: judge.yaml, then judge_census.yaml continuing its judge
    shipped = recipe_chain(load_config(TrainJudgeConfig, REPO / "jobs" / "configs" / "judge.yaml"))
    assert [c.out for c in shipped] == ["runs/judge", "runs/judge_census"] and shipped[1].init_from == "runs/judge/judge"
    assert shipped[1].copy_census and shipped[1].rule_reasons and shipped[1].rule_verdict and shipped[1].rule_where and shipped[1].rule_count
    assert shipped[1].data.census_scenes
    # a bad link fails before anything trains
    third.write_text(f"out: {tmp_path / 'c'}\nthen: {second}\n")
    with pytest.raises(InputError, match="is already in the chain; a recipe must end"):
        recipe_chain(TrainJudgeConfig(out=str(tmp_path / "a"), then=str(second)))
    third.write_text(f"out: {tmp_path / 'c'}\nsteps: -1\n")
    with pytest.raises(InputError, match="then: .*steps"):
        recipe_chain(TrainJudgeConfig(out=str(tmp_path / "a"), then=str(second)))
    with pytest.raises(InputError, match="then: .*missing.yaml: no such file"):
        recipe_chain(TrainJudgeConfig(then=str(tmp_path / "missing.yaml")))
    third.write_text(f"out: {tmp_path / 'a'}\n")
    with pytest.raises(InputError, match="their own out folders"):
        recipe_chain(TrainJudgeConfig(out=str(tmp_path / "a"), then=str(second)))
