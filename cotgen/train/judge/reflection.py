"""Reflections: the judge's free-text answer to PARM++'s reflection question (`JudgePrompts.reflection`).

The answer the judge is taught (`reflection_target`) is "yes" when the exact evaluator calls the image
correct, else "no: " and the evaluator's reason sentences joined by "; ", e.g.
"no: expected 2 circles, found 1; the square is not left of the triangle (...)". Its first token is
the same "yes" / "no" as the ORM answer, and every reason is one of the evaluator's own sentences, so
an explanation can be checked word for word (`reflection_scores`).

Training is teacher forcing (`target_loss`): the chat encoded exactly as `VLMJudge.explain` encodes
it (left-padded, ending with the assistant's generation prompt), the target's tokens and the
end-of-turn token appended on the right (right-padded), cross-entropy on those tokens only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from transformers import BatchFeature

from cotgen.errors import InputError
from cotgen.judge.vlm import VLMJudge

END_OF_TURN = "<|im_end|>"
IGNORE = -100
"""Label of the positions the loss skips (prompt and padding)."""


def reflection_target(answer: str, reasons: Sequence[str]) -> str:
    """What the judge should answer to the reflection question: "yes", or "no: " + "; ".join(reasons)."""
    if answer == "yes":
        return "yes"
    if answer != "no" or not reasons:
        raise InputError(
            f"reflection: expected 'yes', or 'no' with reasons; got {answer!r} with {len(reasons)} reasons"
        )
    return "no: " + "; ".join(reasons)


def teacher_forced(
    judge: VLMJudge, images: Sequence[Image.Image], questions: Sequence[str], targets: Sequence[str], history=None
) -> tuple[BatchFeature, torch.Tensor]:
    """The model inputs for each chat with its target answer (+ end of turn) appended, and labels:
    the target's token ids where they stand, `IGNORE` elsewhere. The prompts are left-padded by
    `encode` (so every answer starts at the same column) and the answers right-padded; padding is
    masked out of the attention mask, from which Qwen2-VL also computes its rope positions. `history`
    as in `VLMJudge.encode`."""
    tokenizer = judge.processor.tokenizer
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    answers = [tokenizer.encode(t, add_special_tokens=False) + [end] for t in targets]
    inputs = judge.encode(images, questions, history)
    rows, prompt = inputs["input_ids"].shape
    width = max(len(a) for a in answers)
    ids = torch.full((rows, width), tokenizer.pad_token_id, dtype=inputs["input_ids"].dtype)
    mask = torch.zeros((rows, width), dtype=inputs["attention_mask"].dtype)
    for i, answer in enumerate(answers):
        ids[i, : len(answer)] = torch.tensor(answer)
        mask[i, : len(answer)] = 1
    ids, mask = ids.to(inputs["input_ids"].device), mask.to(inputs["attention_mask"].device)
    labels = torch.cat([torch.full((rows, prompt), IGNORE, device=ids.device), ids.masked_fill(mask == 0, IGNORE)], 1)
    inputs["input_ids"] = torch.cat([inputs["input_ids"], ids], 1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], mask], 1)
    if "mm_token_type_ids" in inputs:  # Qwen2-VL: the answer is text (type 0)
        types = inputs["mm_token_type_ids"]
        inputs["mm_token_type_ids"] = torch.cat([types, torch.zeros_like(ids, dtype=types.dtype)], 1)
    return inputs, labels


def target_loss(
    judge: VLMJudge, images: Sequence[Image.Image], questions: Sequence[str], targets: Sequence[str], history=None,
    last_weight: float = 0.0,
) -> torch.Tensor:  # fmt: skip
    """Teacher-forced cross-entropy of each target's tokens and end of turn, averaged within each row,
    then over the rows: every example weighs the same, so a long "no: ..." does not drown a "yes".
    `last_weight` adds that many times the cross-entropy of each target's last token (before the end
    of turn): a reading's answer, which its many tokens would otherwise outweigh."""
    inputs, labels = teacher_forced(judge, images, questions, targets, history)
    width = labels.shape[1] - int((labels != IGNORE).any(0).int().argmax())  # the answers' columns, at the right
    # logits from the generation prompt's last token on, each predicting the next; none for the left pads
    logits = judge.model(**inputs, logits_to_keep=width + 1, use_cache=False).logits[:, :-1]
    labels = labels[:, -width:]
    tokens = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
    counted = (labels != IGNORE).sum(1)
    rows = tokens.sum(1) / counted
    if last_weight:
        rows = rows + last_weight * tokens[torch.arange(len(rows)), counted - 2]  # the answers start at column 0
    return rows.mean()


def reflection_scores(explanations: Sequence[str], answers: Sequence[str], reasons: Sequence[Sequence[str]]) -> dict:
    """On the images the evaluator calls wrong: `reason_recall`, the share of its reasons found verbatim
    in the explanations, and `says_no`, the share of explanations starting with "no"; on the correct
    ones, `says_yes`. None where there is nothing to count."""
    wrong = [(text, why) for text, answer, why in zip(explanations, answers, reasons) if answer == "no"]
    right = [text for text, answer in zip(explanations, answers) if answer == "yes"]
    found = [reason in text for text, why in wrong for reason in why]
    return {
        "wrong": len(wrong), "right": len(right),
        "reason_recall": sum(found) / len(found) if found else None,
        "says_no": sum(text.startswith("no") for text, _ in wrong) / len(wrong) if wrong else None,
        "says_yes": sum(text.startswith("yes") for text in right) / len(right) if right else None,
    }  # fmt: skip
