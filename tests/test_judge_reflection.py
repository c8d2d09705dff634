"""Reflections: the target text, the teacher-forced loss over padded batches, and training to `explain`."""

import pytest
import torch
from PIL import Image
from tiny_judges import CORPUS, byte_level_tokenizer, tiny_qwen2_vl

from cotgen.errors import InputError
from cotgen.train.judge.reflection import IGNORE, reflection_scores, reflection_target, target_loss, teacher_forced

REASONS = ("expected 2 circles, found 1", "the square is red, expected blue")
TARGET = "no: expected 2 circles, found 1; the square is red, expected blue"


def picture(color: str) -> Image.Image:
    image = Image.new("RGB", (56, 56), "white")
    image.paste(Image.new("RGB", (28, 28), color), (14, 14))
    return image


def tiny_judge():
    torch.manual_seed(0)
    return tiny_qwen2_vl(byte_level_tokenizer([*CORPUS, TARGET], vocab_size=400))


@pytest.fixture(scope="module")
def judge():
    return tiny_judge()


def test_the_target_is_yes_or_no_with_the_evaluators_reasons():
    assert reflection_target("yes", ()) == "yes"
    assert reflection_target("no", REASONS) == TARGET
    assert reflection_target("no", REASONS[:1]) == "no: expected 2 circles, found 1"
    with pytest.raises(InputError, match="reasons"):
        reflection_target("no", ())


def test_answers_are_appended_right_padded_after_left_padded_prompts(judge):
    questions = ["Is it red?", "Does this image accurately represent the prompt? Please answer yes or no."]
    inputs, labels = teacher_forced(judge, [picture("red"), picture("blue")], questions, ["yes", TARGET])
    prompt = judge.encode([picture("red")] * 2, questions)["input_ids"].shape[1]
    end = judge.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    answer = judge.processor.tokenizer.encode("yes", add_special_tokens=False) + [end]
    assert (labels[:, :prompt] == IGNORE).all()
    assert labels[0, prompt:].tolist()[: len(answer)] == answer and (labels[0, prompt + len(answer) :] == IGNORE).all()
    assert labels[1, -1] == end and (inputs["attention_mask"][1, prompt:] == 1).all()
    assert inputs["attention_mask"][0, 0] == 0 and inputs["attention_mask"][0, -1] == 0  # padded on both sides
    assert (inputs["mm_token_type_ids"][:, prompt:] == 0).all()
    assert inputs["input_ids"].shape == inputs["mm_token_type_ids"].shape == labels.shape


def test_a_batch_loss_is_the_mean_of_its_rows_losses(judge):
    """Left pads before the prompts and right pads after the answers must change nothing: neither the
    attention nor Qwen2-VL's rope positions, which it computes from the attention mask."""
    images = [picture("red"), picture("blue"), picture("green")]
    questions = ["Is it red?", "Does this image accurately represent the prompt? Please answer yes or no.", "Why?"]
    targets = ["yes", TARGET, "no: expected 2 circles, found 1"]
    with torch.no_grad():
        batch = target_loss(judge, images, questions, targets)
        rows = [target_loss(judge, [i], [q], [t]) for i, q, t in zip(images, questions, targets)]
    assert batch.item() == pytest.approx(torch.stack(rows).mean().item(), abs=1e-5)


def test_the_last_weight_adds_the_cross_entropy_of_each_targets_last_token(judge):
    images, questions = [picture("red"), picture("blue")], ["Is it red?", "Why?"]
    targets = ["yes", "no: expected 2 circles, found 1"]
    with torch.no_grad():
        plain = target_loss(judge, images, questions, targets)
        weighted = target_loss(judge, images, questions, targets, last_weight=2.0)
        last = []
        for image, question, target in zip(images, questions, targets):
            inputs, labels = teacher_forced(judge, [image], [question], [target])
            logits = judge.model(**inputs).logits[0]
            position = labels.shape[1] - 2  # the target's last token, before the end of turn
            last.append(torch.nn.functional.cross_entropy(logits[position - 1], labels[0, position]))
    assert weighted.item() == pytest.approx(plain.item() + 2.0 * torch.stack(last).mean().item(), abs=1e-4)


def test_a_judge_trained_on_one_reflection_explains_it_word_for_word():
    judge = tiny_judge()  # its own: training changes it
    image, question = picture("red"), "Does this image accurately represent the prompt? Explain."
    model = judge.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    model.train()
    for _ in range(40):
        loss = target_loss(judge, [image], [question], [TARGET])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert judge.explain([image], [question], max_new_tokens=40) == [TARGET]


def test_reflection_scores_count_verbatim_reasons():
    explanations = [TARGET, "no: expected 2 circles, found 3", "yes", "yes", "no: something"]
    answers = ["no", "no", "no", "yes", "yes"]
    reasons = [REASONS, ("expected 2 circles, found 1",), ("expected 1 cross, found none",), (), ()]
    scores = reflection_scores(explanations, answers, reasons)
    assert scores == {"wrong": 3, "right": 2, "reason_recall": 0.5, "says_no": 2 / 3, "says_yes": 0.5}
    assert reflection_scores([], [], [])["reason_recall"] is None
