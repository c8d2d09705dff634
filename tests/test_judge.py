"""The VLM judge on tiny random Qwen2-VL, Qwen2.5-VL and LLaVA-OneVision models built here."""

import copy
import json
import types

import pytest
import torch
from PIL import Image
from tiny_judges import (
    BUILDERS,
    CORPUS,
    EXPECTED_PROMPT,
    LLAVA_TEMPLATE,
    SPECIALS,
    byte_level_tokenizer,
    tiny_llava_onevision,
    tiny_qwen2_vl,
)

from cotgen.config import load_config
from cotgen.errors import InputError
from cotgen.judge import JudgePrompts, VLMJudge, answer_tokens, load_judge, save_judge


@pytest.fixture(scope="module")
def tokenizer():
    return byte_level_tokenizer(CORPUS, vocab_size=400)


@pytest.fixture(scope="module", params=list(BUILDERS))
def judge(request, tokenizer) -> VLMJudge:
    torch.manual_seed(0)
    return BUILDERS[request.param](tokenizer)


def picture(color: str, size: tuple[int, int] = (56, 56)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    image.paste(Image.new("RGB", (size[0] // 2, size[1] // 2), color), (size[0] // 4, size[1] // 4))
    return image


IMAGES = [picture("red"), picture("blue", (84, 56)), picture("green", (56, 70))]
QUESTIONS = [
    "Does this image show a red circle?",
    "yes",
    "Please answer yes or no: two blue squares left of a triangle?",
]


def spellings(tokenizer, word: str) -> set[int]:
    """The vocabulary entries for word, Word and WORD, with and without a leading space (byte-level "Ġ")."""
    vocab = tokenizer.get_vocab()
    return {vocab[t] for form in (word, word.capitalize(), word.upper()) for t in (form, "Ġ" + form) if t in vocab}


def test_answer_tokens_group_every_single_token_spelling(tokenizer):
    answers = answer_tokens(tokenizer)
    assert set(answers.yes) == spellings(tokenizer, "yes") and len(answers.yes) == 4
    assert set(answers.no) == spellings(tokenizer, "no") and len(answers.no) == 4
    with pytest.raises(InputError, match="no single token for 'yes'"):
        answer_tokens(byte_level_tokenizer(["a b c"], vocab_size=260))


def test_p_yes_is_the_softmax_of_the_grouped_next_token_logits(judge, tokenizer):
    text = EXPECTED_PROMPT[judge.model.config.model_type].format(q=QUESTIONS[0])
    inputs = judge.processor(images=[IMAGES[0]], text=[text], return_tensors="pt")
    assert torch.equal(judge.encode(IMAGES[:1], QUESTIONS[:1])["input_ids"], inputs["input_ids"])
    with torch.no_grad():
        logits = judge.model(**inputs).logits[0, -1]
    yes, no = (logits[list(spellings(tokenizer, word))].logsumexp(0) for word in ("yes", "no"))
    p = judge.p_yes(IMAGES[:1], QUESTIONS[:1])
    assert p.dtype == torch.float32 and p.shape == (1,)
    assert p[0].item() == pytest.approx(torch.softmax(torch.stack([yes, no]), 0)[0].item(), abs=1e-5)


def test_batched_left_padded_scores_equal_one_at_a_time(judge):
    calls = []
    hook = judge.model.register_forward_hook(lambda *_: calls.append(1))
    batched = judge.p_yes(IMAGES, QUESTIONS)
    hook.remove()
    assert len(calls) == 1  # one forward pass for the whole batch
    single = torch.cat([judge.p_yes([image], [question]) for image, question in zip(IMAGES, QUESTIONS)])
    assert batched.shape == (3,) and ((batched > 0) & (batched < 1)).all()
    inputs = judge.encode(IMAGES, QUESTIONS)
    assert (inputs["attention_mask"][:, -1] == 1).all() and (inputs["attention_mask"][:, 0] == 0).any()  # left-padded
    assert torch.allclose(batched, single, atol=1e-4)
    assert judge.p_yes([], []).shape == (0,)


def test_the_image_and_the_question_change_the_score(judge):
    red, blue = judge.p_yes([picture("red"), picture("blue")], [QUESTIONS[0]] * 2)
    assert abs(red - blue) > 1e-4
    asked = judge.p_yes([picture("red")] * 2, QUESTIONS[:2])
    assert abs(asked[0] - asked[1]) > 1e-4


def test_history_puts_earlier_turns_before_the_question(judge, tokenizer):
    clarity, potential = "Is the image clear enough to judge?", "Does it have the potential to match?"
    history = [[(clarity, "yes")]]
    ids = judge.encode(IMAGES[:1], [potential], history)["input_ids"][0]
    text = tokenizer.decode(ids)
    asked = text.index(clarity)
    assert asked < text.index("yes", asked + len(clarity)) < text.index(potential)
    image_token = judge.processor.image_token_id
    plain = judge.encode(IMAGES[:1], [potential])["input_ids"][0]
    assert (ids == image_token).sum() == (plain == image_token).sum() > 0  # the image is shown once, in the first turn
    with_history = judge.p_yes(IMAGES[:1], [potential], history)
    assert abs(with_history - judge.p_yes(IMAGES[:1], [potential])) > 1e-4
    batched = judge.p_yes(IMAGES[:2], [potential, potential], [history[0], []])
    assert batched[0].item() == pytest.approx(with_history.item(), abs=1e-4)


def test_explain_is_greedy_deterministic_and_decoded(judge, tokenizer):
    texts = judge.explain(IMAGES, QUESTIONS, max_new_tokens=6)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    sampling = VLMJudge(copy.deepcopy(judge.model), judge.processor)
    sampling.model.generation_config.update(do_sample=True, temperature=1.5, top_k=50)  # as some checkpoints ship
    assert (
        texts
        == judge.explain(IMAGES, QUESTIONS, max_new_tokens=6)
        == sampling.explain(IMAGES, QUESTIONS, max_new_tokens=6)
    )
    assert not any(special in t for t in texts for special in SPECIALS)
    first = judge.explain(IMAGES[:1], QUESTIONS[:1], max_new_tokens=1)[0]
    with torch.no_grad():
        logits = judge.model(**judge.encode(IMAGES[:1], QUESTIONS[:1])).logits[0, -1]
    assert first == tokenizer.decode([logits.argmax().item()], skip_special_tokens=True).strip()
    assert judge.explain([], []) == []


def test_inputs_follow_the_model_dtype(judge):
    half = VLMJudge(copy.deepcopy(judge.model).to(torch.bfloat16), judge.processor)
    assert half.encode(IMAGES[:1], QUESTIONS[:1])["pixel_values"].dtype == torch.bfloat16
    scores = half.p_yes(IMAGES[:2], QUESTIONS[:2])
    assert scores.dtype == torch.float32 and torch.allclose(scores, judge.p_yes(IMAGES[:2], QUESTIONS[:2]), atol=0.05)


def test_saved_judge_reloads_from_its_folder(judge, tmp_path):
    save_judge(judge, tmp_path)
    reloaded = load_judge(tmp_path)
    assert type(reloaded.model) is type(judge.model) and type(reloaded.processor) is type(judge.processor)
    assert reloaded.processor.chat_template == judge.processor.chat_template
    assert torch.equal(reloaded.encode(IMAGES, QUESTIONS)["input_ids"], judge.encode(IMAGES, QUESTIONS)["input_ids"])
    assert torch.allclose(reloaded.p_yes(IMAGES, QUESTIONS), judge.p_yes(IMAGES, QUESTIONS), atol=1e-6)


def test_a_folder_in_the_hubs_layout_loads_without_torchvision(tokenizer, tmp_path):
    """Checkpoints on the hub keep the image processor in preprocessor_config.json (named by its torchvision
    class) and the chat template in chat_template.json; the PIL image processor stands in."""
    torch.manual_seed(0)
    judge = tiny_llava_onevision(tokenizer)
    save_judge(judge, tmp_path)
    settings = json.loads((tmp_path / "processor_config.json").read_text())
    image = settings.pop("image_processor") | {"processor_class": "LlavaOnevisionProcessor"}
    del settings["video_processor"]
    assert image["image_processor_type"] == "LlavaOnevisionImageProcessor"
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(image))
    (tmp_path / "processor_config.json").write_text(json.dumps(settings))
    template = tmp_path / "chat_template.jinja"
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": template.read_text()}))
    template.unlink()
    reloaded = load_judge(tmp_path)
    assert reloaded.processor.num_image_tokens == 16 and reloaded.processor.chat_template == LLAVA_TEMPLATE
    assert torch.allclose(reloaded.p_yes(IMAGES, QUESTIONS), judge.p_yes(IMAGES, QUESTIONS), atol=1e-6)


def test_mismatched_inputs_and_unsupported_models_are_rejected(tokenizer, tmp_path):
    judge = tiny_qwen2_vl(tokenizer)
    with pytest.raises(InputError, match="2 images, 1 questions"):
        judge.p_yes(IMAGES[:2], QUESTIONS[:1])
    janus = types.SimpleNamespace(config=types.SimpleNamespace(model_type="janus"))
    with pytest.raises(InputError, match="'janus' is not supported .*qwen2_vl, qwen2_5_vl, llava_onevision"):
        VLMJudge(janus, judge.processor)
    with pytest.raises(InputError, match="not a model folder"):
        load_judge(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "janus"}))
    with pytest.raises(InputError, match=f"{tmp_path}: model_type 'janus' is not supported"):
        load_judge(tmp_path)


def test_judge_prompts_follow_the_paper_and_validate_placeholders(tmp_path):
    prompts = JudgePrompts()
    orm = prompts.orm.format(prompt="a photo of a red circle")
    assert "prompt: a photo of a red circle. Does this image accurately represent the prompt?" in orm
    assert "'a photo of a red circle.'" in prompts.clarity.format(prompt="a photo of a red circle")
    assert prompts.potential.format(prompt="unused") == prompts.potential  # a follow-up turn: the prompt is in context
    with pytest.raises(InputError, match="orm: the template has no {prompt} placeholder"):
        JudgePrompts(orm="Does this image accurately represent the prompt?")
    with pytest.raises(InputError, match=r"reflection: unknown placeholder \{reason\}"):
        JudgePrompts(reflection="{prompt}: {reason}")
    with pytest.raises(InputError, match="potential: not a valid template"):
        JudgePrompts(potential="yes or no}")
    config = tmp_path / "prompts.yaml"
    config.write_text("clarity: Is it clear?\n")
    with pytest.raises(InputError, match="prompts.yaml: .*clarity: the template has no"):
        load_config(JudgePrompts, config)
