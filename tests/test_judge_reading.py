"""Judges that read before they answer: P(yes) after the judge's own greedy reading, direct answers
in one pass, and the reading mode saved with the judge; and the generator a judge learnt."""

import importlib.util
import json
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from tiny_judges import CORPUS, byte_level_tokenizer, tiny_qwen2_vl

from cotgen.errors import InputError
from cotgen.judge import ReadingMode, load_judge, save_judge
from cotgen.judge.answers import grouped_p_yes
from cotgen.judge.census_views import VIEWS, voted_facts, with_views
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.provenance import GeneratorMismatchWarning, mismatch, record_generator, trained_on, warn_if_mismatched
from cotgen.judge.reading import (
    CONFIG_KEY,
    UNANSWERED,
    after_reading,
    answer_greedily,
    hedged,
    reading_mode,
    set_reading_mode,
    write_readings,
)
from cotgen.judge.skeleton import census_facts
from cotgen.models.presets import weights_digest
from cotgen.train.judge.examples import Example
from cotgen.train.judge.reflection import target_loss, teacher_forced

REPO = Path(__file__).resolve().parents[1]
OUTCOME = "Does this image show a red circle?"
CLARITY = "Is this image clear?"
TARGETS = {  # (colour, question): what the judge is taught to write
    ("red", OUTCOME): "circle: 1, red. answer: yes",
    ("blue", OUTCOME): "circle: 1, blue. answer: no",
    ("red", CLARITY): "yes",
    ("blue", CLARITY): "no",
}
MODE = ReadingMode(marker="answer:", max_tokens=24)


def picture(color: str) -> Image.Image:
    image = Image.new("RGB", (56, 56), "white")
    image.paste(Image.new("RGB", (28, 28), color), (14, 14))
    return image


def taught(examples: list[tuple[str, str, tuple, str]], mode: ReadingMode):
    """A tiny Qwen2-VL taught each (colour, question, chat before it, answer), marked with the reading `mode`."""
    torch.manual_seed(0)
    judge = tiny_qwen2_vl(byte_level_tokenizer([*CORPUS, *(e[-1] for e in examples)], vocab_size=400))
    images = [picture(color) for color, *_ in examples]
    questions, chats, targets = ([e[k] for e in examples] for k in (1, 2, 3))
    optimizer = torch.optim.AdamW(judge.model.parameters(), lr=0.01)
    judge.model.train()
    for _ in range(80):
        loss = target_loss(judge, images, questions, targets, chats)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    judge.model.eval()
    set_reading_mode(judge.model, mode)
    judge.reading = reading_mode(judge.model)
    return judge


@pytest.fixture(scope="module")
def reader():
    """A tiny Qwen2-VL taught the four answers above, marked as a judge that reads first."""
    return taught([(color, question, (), target) for (color, question), target in TARGETS.items()], MODE)


FIRST = "What is in the image?"
FIRST_MODE = ReadingMode(marker="answer:", max_tokens=24, first=FIRST, first_tokens=16)
TOLD = {"red": "circle: 1, red.", "blue": "circle: 1, blue."}


@pytest.fixture(scope="module")
def asker():
    """A tiny Qwen2-VL taught to answer FIRST, and the outcome question alone and after FIRST's answer
    in the chat, marked as a judge that asks itself FIRST before it reads."""
    examples = [(color, question, (), target) for (color, question), target in TARGETS.items()]
    examples += [(color, FIRST, (), text) for color, text in TOLD.items()]
    examples += [(color, OUTCOME, ((FIRST, TOLD[color]),), f"{TOLD[color]} answer: {a}") for color, a in (("red", "yes"), ("blue", "no"))]
    return taught(examples, FIRST_MODE)


def test_the_answer_is_read_after_the_judges_own_reading(reader):
    images, questions = [picture("red"), picture("blue")], [OUTCOME, OUTCOME]
    p_yes, readings = reader.read(images, questions)
    assert readings == ["circle: 1, red", "circle: 1, blue"]
    assert p_yes[0] > 0.9 and p_yes[1] < 0.1
    # one forward pass over the prompt, the reading and the marker: the answer after it, hedged by the
    # probability of the reading itself
    tokenizer = reader.processor.tokenizer
    for image, question, text, p in zip(images, questions, readings, p_yes):
        inputs = reader.encode([image], [question])
        written = torch.tensor([tokenizer.encode(f"{text}. answer:", add_special_tokens=False)])
        inputs["input_ids"] = torch.cat([inputs["input_ids"], written], 1)
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(written)], 1)
        logits = reader.model(**inputs).logits[0]
        answer = grouped_p_yes(logits[-1:], reader.answers)[0]
        predicted = logits[-written.shape[1] - 1 : -1].log_softmax(-1)
        p_reading = predicted.gather(-1, written[0, :, None]).sum().exp()
        assert 0.5 < p_reading < 1  # a reading the judge was not certain of: the hedge shows
        assert hedged(answer, p_reading).item() == pytest.approx(p.item(), abs=1e-4)
        assert abs(p.item() - 0.5) < abs(answer.item() - 0.5) and (p.item() > 0.5) == (answer.item() > 0.5)
    assert torch.equal(reader.p_yes(images, questions), p_yes)


def test_a_reading_judges_free_text_answer_is_what_follows_its_reading(reader):
    # what PARM++ feeds back to the generator is the answer, not the reading the judge wrote first
    images = [picture("red"), picture("blue")]
    assert reader.explain(images, [OUTCOME, OUTCOME]) == ["yes", "no"]
    assert reader.explain(images, [CLARITY, CLARITY]) == ["yes", "no"]  # a direct answer stays whole
    assert after_reading("circle: 1, blue. answer: no: expected a red circle", MODE) == "no: expected a red circle"


def test_drawn_readings_follow_the_judges_own_distribution(reader):
    tokenizer = reader.processor.tokenizer
    # the least sure of a few greedy readings (colours it never saw among them), so that draws differ
    colors = ["red", "blue", "purple", "green", "white"]
    sure = write_readings(reader.model, tokenizer, reader.encode([picture(c) for c in colors], [OUTCOME] * 5), MODE, reader.answers)
    color = colors[min(range(5), key=lambda i: sure[i].p_reading)]
    greedy = min(sure, key=lambda r: r.p_reading)
    assert greedy.p_reading < 0.9, [r.p_reading for r in sure]
    args = (reader.model, tokenizer, reader.encode([picture(color)] * 256, [OUTCOME] * 256), MODE, reader.answers)
    torch.manual_seed(0)
    drawn = write_readings(*args, sample=True)
    distinct = {r.tokens: r for r in drawn}
    assert greedy.tokens in distinct and len(distinct) > 1  # the greedy reading, and others
    share = sum(r.tokens == greedy.tokens for r in drawn) / len(drawn)
    assert share == pytest.approx(greedy.p_reading, abs=0.1)  # drawn about as often as it is probable
    assert sum(r.p_reading for r in distinct.values()) <= 1 + 1e-6
    torch.manual_seed(0)
    assert write_readings(*args, sample=True) == drawn  # the caller's seed makes the draws


def test_a_hedged_answer_ranks_the_surer_reading_first_and_keeps_its_side():
    answers = torch.tensor([0.9995, 0.9996, 0.0002, 0.0001])
    readings = torch.tensor([0.95, 0.40, 0.95, 0.40])
    p = hedged(answers, readings)
    assert p[0] > p[1] > 0.5 > p[3] > p[2]  # sure yes, unsure yes, unsure no, sure no
    assert torch.allclose(hedged(answers, torch.ones(4)), answers, atol=1e-6)  # a certain reading: the answer as is
    assert (hedged(answers, torch.full((4,), 1e-26)) > 0.5).tolist() == [True, True, False, False]  # however unsure


def test_a_direct_answer_costs_one_pass_and_reads_nothing(reader):
    images, questions = [picture("red"), picture("blue"), picture("red")], [CLARITY, CLARITY, OUTCOME]
    p_yes, readings = reader.read(images, questions)
    assert readings[:2] == ["", ""] and readings[2] == "circle: 1, red"
    mode, reader.reading = reader.reading, None  # the plain one-forward P(yes) of a judge that never reads
    try:
        plain = reader.p_yes(images[:2], questions[:2])
    finally:
        reader.reading = mode
    assert p_yes[:2].tolist() == pytest.approx(plain.tolist(), abs=1e-5)
    assert p_yes[0] > 0.9 and p_yes[1] < 0.1


def test_a_reading_that_never_reaches_its_marker_answers_neither_way(reader):
    reader.reading = ReadingMode(marker="never written", max_tokens=6)
    try:
        p_yes, readings = reader.read([picture("red")], [OUTCOME])
    finally:
        reader.reading = MODE
    assert p_yes.tolist() == [UNANSWERED] and readings[0].startswith("circle")


def test_the_reading_mode_is_saved_with_the_judge_and_checked(reader, tmp_path):
    save_judge(reader, tmp_path / "judge")
    loaded = load_judge(tmp_path / "judge")
    assert loaded.reading == MODE
    assert loaded.read([picture("blue")], [OUTCOME])[1] == ["circle: 1, blue"]
    setattr(loaded.model.config, CONFIG_KEY, {"marker": "answer:", "tokens": 3})
    with pytest.raises(InputError, match=f"{CONFIG_KEY}: expected"):
        reading_mode(loaded.model)
    with pytest.raises(InputError, match="max_tokens: must be at least 1"):
        ReadingMode(max_tokens=0)
    set_reading_mode(loaded.model, None)
    assert reading_mode(loaded.model) is None


def test_a_judge_remembers_its_generator_and_warns_on_another(reader, tmp_path):
    digest = weights_digest("embedded", "generator")
    record_generator(reader.model, "embedded", digest)
    save_judge(reader, tmp_path / "judge")
    assert trained_on(tmp_path / "judge") == {"name": "embedded", "digest": digest}
    assert mismatch(tmp_path / "judge", "embedded") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is raised for the generator it learnt
        assert warn_if_mismatched(tmp_path / "judge", "embedded") is None

    record_generator(reader.model, "embedded", "0123456789abcdef")  # as if the generator was retrained since
    save_judge(reader, tmp_path / "older")
    with pytest.warns(GeneratorMismatchWarning, match=r"learnt the images of generator embedded \(weights 0123456789abcdef\)"):
        message = warn_if_mismatched(tmp_path / "older", "embedded")
    assert f"(weights {digest})" in message and "data.generator=embedded" in message
    # no record (a hub judge), or weights that are not here: nothing to tell, nothing downloaded
    reader.model.config.cotgen_generator = None
    save_judge(reader, tmp_path / "plain")
    assert trained_on(tmp_path / "plain") is None and mismatch(tmp_path / "plain", "embedded") is None
    assert mismatch("some-org/some-judge", "embedded") is None
    assert mismatch(tmp_path / "older", "some-org/some-generator") is None


def test_a_judge_that_asks_itself_first_reads_after_its_own_answer(asker, tmp_path):
    images, questions = [picture("red"), picture("blue"), picture("red")], [OUTCOME, OUTCOME, CLARITY]
    p_yes, readings = asker.read(images, questions)
    assert readings == ["circle: 1, red", "circle: 1, blue", ""]
    assert p_yes[0] > 0.5 > p_yes[1]
    mode, asker.reading = asker.reading, None  # a direct answer: one forward pass, as a judge that never reads
    try:
        assert p_yes[2].item() == pytest.approx(asker.p_yes(images[2:], questions[2:]).item(), abs=1e-5)
    finally:
        asker.reading = mode
    # the first answer's probability by teacher forcing (its end of turn included), and the reading
    # written in the chat after it: the answer is hedged by both
    for image, color, p in zip(images, ("red", "blue"), p_yes):
        inputs, labels = teacher_forced(asker, [image], [FIRST], [TOLD[color]])
        logits = asker.model(**inputs).logits[0, :-1].log_softmax(-1)
        written = labels[0, 1:] != -100
        p_told = logits[written].gather(-1, labels[0, 1:][written][:, None]).sum().exp()
        after = write_readings(asker.model, asker.processor.tokenizer, asker.encode([image], [OUTCOME], [[(FIRST, TOLD[color])]]), FIRST_MODE, asker.answers)[0]
        assert after.text == f"circle: 1, {color}"
        assert p.item() == pytest.approx(hedged(torch.tensor(after.p_yes), after.p_reading * p_told).item(), abs=1e-4)
        assert p_told < 1 and abs(p.item() - 0.5) < abs(hedged(torch.tensor(after.p_yes), torch.tensor(after.p_reading)).item() - 0.5)
    save_judge(asker, tmp_path / "judge")
    assert load_judge(tmp_path / "judge").reading == FIRST_MODE
    with pytest.raises(InputError, match="first_tokens: must be at least 1 with a first question, got 0"):
        ReadingMode(first=FIRST)


def test_a_judge_copies_its_census_facts_into_its_reading_and_answers_after_them(asker):
    """With `first_facts`, the outcome question's reading is the census's facts for the question's
    classes, the census left out of the chat: the judge answers after what it read prompt-free."""
    images = [picture("red"), picture("blue")]
    before = asker.reading
    asker.reading = ReadingMode(marker="answer:", max_tokens=24, first=FIRST, first_tokens=16, subjects=("circle",), first_facts=True)
    try:
        p_yes, readings = asker.read(images, [OUTCOME] * 2)
    finally:
        asker.reading = before
    assert readings == ["circle: 1, red", "circle: 1, blue"]
    assert p_yes[0] > 0.5 > p_yes[1]
    # the same facts, written rather than copied, as the judge without the census in the chat reads
    assert asker.read(images, [OUTCOME] * 2)[1] == readings
    with pytest.raises(InputError, match="first_facts"):
        ReadingMode(first_facts=True, subjects=("circle",))


def test_a_vote_takes_each_class_facts_from_the_first_view_with_the_count_most_views_read():
    views = [{"circle": "2, red, red", "square": "none"}, {"circle": "3, red, red, red"}, {"circle": "3, red, red, blue", "square": "1, blue"}]
    assert voted_facts(views) == {"circle": "3, red, red, red", "square": "none"}  # a square tie goes to the first view
    assert voted_facts(views[:1]) == views[0]
    images = [picture("red"), picture("blue"), picture("red")]
    seen, where = with_views(images, [True, False, True], 3)
    assert where == [[0, 3, 5], [1], [2, 4, 6]]  # a preview is read as it is
    assert seen[:3] == images and seen[3] == seen[4].transpose(Image.Transpose.FLIP_LEFT_RIGHT) == images[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert seen[5].getpixel((14 + 4, 14)) == (255, 0, 0) and seen[5].getpixel((14, 14)) == (255, 255, 255)  # shifted right by 4 px
    assert with_views(images, [True] * 3, 1) == (images, [[0], [1], [2]])


def test_a_census_judge_may_copy_the_facts_most_views_of_a_finished_image_count(asker, tmp_path):
    images = [picture("red"), picture("blue")]
    before = asker.reading
    once = ReadingMode(marker="answer:", max_tokens=24, first=FIRST, first_tokens=16, subjects=("circle",), first_facts=True)
    try:
        asker.reading = once
        previews, finished = (asker.read(images, [OUTCOME] * 2, finished=[done] * 2)[0] for done in (False, True))
        asker.reading = replace(once, census_views=len(VIEWS))
        assert torch.equal(asker.read(images, [OUTCOME] * 2, finished=[False, False])[0], previews)  # previews: one view
        p_yes, readings = asker.read(images, [OUTCOME] * 2)
        # the census's probability is its mean over the views (the tiny judge is less sure of shifted ones)
        assert not torch.allclose(p_yes, finished) and ((p_yes > 0.5) == (finished > 0.5)).all()
        set_reading_mode(asker.model, asker.reading)
        save_judge(asker, tmp_path / "judge")
    finally:
        asker.reading = before
        set_reading_mode(asker.model, before)
    # each finished image's facts are the vote of its census on every view, asked one by one here
    for image, reading in zip(images, readings):
        views = [view(image) for view in VIEWS.values()]
        told = answer_greedily(asker.model, asker.processor.tokenizer, asker.encode(views, [FIRST] * len(views)), 16)[0]
        assert reading == "circle: " + voted_facts([census_facts(text, ("circle",)) for text in told])["circle"]
    assert load_judge(tmp_path / "judge").reading.census_views == len(VIEWS)
    with pytest.raises(InputError, match="census_views: votes on the census facts a reading copies"):
        ReadingMode(census_views=2)
    with pytest.raises(InputError, match=f"census_views: expected a whole number from 1 to {len(VIEWS)}, got 0"):
        replace(once, census_views=0)


WORLD_PROMPT = "a photo of a red circle"
WORLD_ORM = JudgePrompts().orm.format(prompt=WORLD_PROMPT)
WORLD_REFLECTION = JudgePrompts().reflection.format(prompt=WORLD_PROMPT)
ELSEWHERE = "Why is this image wrong?"


@pytest.fixture(scope="module")
def rule_reflector():
    """A tiny Qwen2-VL taught to read for the outcome question about a world prompt, and to write a
    reflection of its own (without the evaluator's reasons), marked to reflect by rule."""
    examples = [
        ("red", WORLD_ORM, (), "circle: 1, red. answer: yes"),
        ("blue", WORLD_ORM, (), "circle: 1, blue. answer: no"),
        ("red", WORLD_REFLECTION, (), "yes"),
        ("blue", WORLD_REFLECTION, (), "no: it is wrong"),
        ("blue", ELSEWHERE, (), "no: it is blue"),
    ]
    return taught(examples, ReadingMode(marker="answer:", max_tokens=24, rule_reasons=True))


def test_a_judge_reflects_by_rule_on_the_facts_it_read(rule_reflector, tmp_path):
    """A "no" to a world prompt's image gets the evaluator's reasons for what the judge read; a question
    quoting no world prompt gets the reflection the judge writes, as without the rule."""
    images, questions = [picture("red"), picture("blue"), picture("blue")], [WORLD_REFLECTION, WORLD_REFLECTION, ELSEWHERE]
    assert rule_reflector.read(images[:2], [WORLD_ORM] * 2)[1] == ["circle: 1, red", "circle: 1, blue"]
    by_rule = rule_reflector.explain(images, questions)
    assert by_rule == ["yes", "no: the circle is blue, expected red", "no: it is blue"]
    mode = rule_reflector.reading
    rule_reflector.reading = replace(mode, rule_reasons=False)
    try:
        assert rule_reflector.explain(images, questions) == ["yes", "no: it is wrong", "no: it is blue"]
    finally:
        rule_reflector.reading = mode
    save_judge(rule_reflector, tmp_path / "judge")
    assert load_judge(tmp_path / "judge").reading.rule_reasons


def test_the_card_job_sets_how_a_judge_reflects_and_answers_and_rewrites_its_held_out_sections(rule_reflector, tmp_path):
    spec = importlib.util.spec_from_file_location("judge_card", REPO / "jobs" / "judge_card.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    folder, data = tmp_path / "judge", tmp_path / "data"
    rule_reflector.reading = replace(rule_reflector.reading, rule_reasons=False)
    try:
        save_judge(rule_reflector, folder)
    finally:
        rule_reflector.reading = replace(rule_reflector.reading, rule_reasons=True)
    (folder / "README.md").write_text("# card\n\n## Held-out accuracy\nold table\n\n## Held-out reflections\nold figures\n\n## Config\nkept\n")
    weights = (folder / "model.safetensors").read_bytes()
    with pytest.raises(InputError, match="heldout: no finished set"):
        job.main(["--judge", str(folder), "--data", str(data)])
    images, prefixes = [], []
    for k, (color, answer, reasons) in enumerate((("red", "yes", ()), ("blue", "no", ("the circle is blue, expected red",)))):
        images.append(Example(f"images/{color}.png", WORLD_ORM, answer, "colors", WORLD_PROMPT, source="heldout", reasons=reasons))
        path = f"images/{k:05d}_s1.png"
        prefixes += [
            Example(path, WORLD_ORM, answer, "colors", WORLD_PROMPT, task="prm", source="heldout/step1"),
            Example(path, CLARITY, "yes", "colors", WORLD_PROMPT, task="clarity", source="heldout/step1"),
            Example(path, CLARITY, answer, "colors", WORLD_PROMPT, task="potential", source="heldout/step1", history=((CLARITY, "yes"),)),
        ]
        for name in ("heldout", "heldout_prefixes"):
            (data / name / "images").mkdir(parents=True, exist_ok=True)
            picture(color).save(data / name / (images[-1].image if name == "heldout" else path))
    for name, examples, settings in (("heldout", images, {"samples": 1, "seed": 0}), ("heldout_prefixes", prefixes, {"records": 2})):
        (data / name / "examples.jsonl").write_text("".join(json.dumps(e.to_json()) + "\n" for e in examples))
        (data / name / "done.json").write_text(json.dumps({"settings": settings}))

    argv = ["--judge", str(folder), "--data", str(data), "--n", "1", "--threads", "1"]
    assert job.main([*argv, "--rule-reasons", "on", "--rule-verdict", "on"]) == 0
    card = (folder / "README.md").read_text()
    reading = load_judge(folder).reading
    assert reading.rule_reasons and reading.rule_verdict and (folder / "model.safetensors").read_bytes() == weights
    assert "old" not in card and card.endswith("## Config\nkept\n") and "reflects by rule" in card
    assert "The 2 images: 1 per record" in card and "Prefixes of 2 held-out records" in card
    assert "| 1.000 | 1.000 | 1.000 |" in card and "| the circle is blue, expected red | no: the circle is blue, expected red |" in card
    assert job.main([*argv, "--rule-reasons", "off"]) == 0
    reading = load_judge(folder).reading
    assert not reading.rule_reasons and reading.rule_verdict  # a flag not given is left as it was
    assert "| 0.000 | 1.000 | 1.000 |" in (folder / "README.md").read_text()  # "no: it is wrong" names no reason


def test_a_judge_may_answer_by_the_evaluators_verdict_on_the_facts_it_read(rule_reflector):
    """With `rule_verdict`, the answer after a reading of a world prompt is 1 or 0 by the evaluator's
    rules on the facts read, hedged by the reading's probability as the learnt answer would be."""
    images = [picture("red"), picture("blue")]
    learnt, readings = rule_reflector.read(images, [WORLD_ORM] * 2)
    written = write_readings(rule_reflector.model, rule_reflector.processor.tokenizer, rule_reflector.encode(images, [WORLD_ORM] * 2), rule_reflector.reading, rule_reflector.answers)
    mode = rule_reflector.reading
    rule_reflector.reading = replace(mode, rule_verdict=True)
    try:
        ruled, same = rule_reflector.read(images, [WORLD_ORM] * 2)
        elsewhere = rule_reflector.read(images, [ELSEWHERE] * 2)[0]
        previews = rule_reflector.p_yes(images, [WORLD_ORM] * 2, finished=[False, False])  # what is not drawn yet may come
    finally:
        rule_reflector.reading = mode
    assert same == readings == ["circle: 1, red", "circle: 1, blue"]
    for p, verdict, w in zip(ruled, (1.0, 0.0), written):
        assert p.item() == pytest.approx(hedged(torch.tensor(verdict), torch.tensor(w.p_reading)).item(), abs=1e-6)
    assert learnt[0] < ruled[0] and learnt[1] > ruled[1]  # surer than the learnt answers, on the same side
    assert torch.allclose(previews, learnt)
    assert torch.allclose(elsewhere, rule_reflector.read(images, [ELSEWHERE] * 2)[0])  # no world prompt: as learnt
    set_reading_mode(rule_reflector.model, replace(mode, rule_verdict=True))
    try:
        assert reading_mode(rule_reflector.model) == replace(mode, rule_verdict=True)  # saved in config.json
    finally:
        set_reading_mode(rule_reflector.model, mode)
