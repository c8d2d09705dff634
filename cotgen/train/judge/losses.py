"""The judge's training losses: the vision stage's per-token object classes, the answer token, and
reflections (teacher-forced, `reflection`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cotgen.errors import InputError
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import VLMJudge
from cotgen.train.judge.cells import CELL_COLORS, CELL_SHAPES
from cotgen.train.judge.config import JudgeModelConfig
from cotgen.train.judge.examples import ANSWERS, Example, ExampleSet
from cotgen.train.judge.reflection import reflection_loss, reflection_target

Batch = list[tuple[ExampleSet, Example]]
"""A training batch, as `BalancedSampler.draw` returns it."""


def visual_cells(spec: JudgeModelConfig) -> int:
    """Merged visual tokens per side of an image."""
    return spec.image_size // (spec.patch_size * spec.merge_size)


def cell_head(judge: VLMJudge) -> torch.nn.Linear:
    """The vision stage's throwaway head: a visual token's features → colour and shape logits."""
    classes = len(CELL_COLORS) + len(CELL_SHAPES)
    return torch.nn.Linear(judge.model.config.text_config.hidden_size, classes).to(judge.model.device)


def cell_loss(judge: VLMJudge, head: torch.nn.Linear, images, colors: torch.Tensor, shapes: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy of each merged visual token's object colour and shape, and the share of tokens
    showing an object whose colour and shape are both right."""
    pixels = judge.processor.image_processor(images, return_tensors="pt").to(judge.model.device)
    colors, shapes = colors.to(judge.model.device), shapes.to(judge.model.device)
    features = judge.model.model.visual(pixels["pixel_values"].to(judge.model.dtype), grid_thw=pixels["image_grid_thw"]).pooler_output
    logits = head(features)
    color_logits, shape_logits = logits[:, : len(CELL_COLORS)], logits[:, len(CELL_COLORS) :]
    loss = F.cross_entropy(color_logits.float(), colors) + F.cross_entropy(shape_logits.float(), shapes)
    occupied = colors > 0
    hits = ((color_logits.argmax(-1) == colors) & (shape_logits.argmax(-1) == shapes))[occupied].float().mean().item()
    return loss, hits


def answer_ids(judge: VLMJudge) -> dict[str, int]:
    """The single token of each answer, "yes" and "no", in the judge's tokenizer."""
    ids = {}
    for word in ANSWERS:
        encoded = judge.processor.tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) != 1:
            raise InputError(f"the judge's tokenizer writes {word!r} as {len(encoded)} tokens, expected one")
        ids[word] = encoded[0]
    return ids


def answer_logits(judge: VLMJudge, batch: Batch) -> torch.Tensor:
    """Next-token logits after the assistant's generation prompt, one row per (set, example)."""
    images = [s.image(e.image) for s, e in batch]
    inputs = judge.encode(images, [e.question for _, e in batch], [e.history for _, e in batch])
    return judge.model(**inputs, logits_to_keep=1).logits[:, -1]


def answer_loss(judge: VLMJudge, batch: Batch, targets: dict[str, int]) -> tuple[torch.Tensor, float]:
    """Cross-entropy of the answer token, and the share of the batch whose "yes" logit is on the right
    side of its "no" logit."""
    target = torch.tensor([targets[e.answer] for _, e in batch], device=judge.model.device)
    logits = answer_logits(judge, batch)
    hits = (logits[:, targets["yes"]] >= logits[:, targets["no"]]).eq(target == targets["yes"]).float().mean().item()
    return F.cross_entropy(logits.float(), target), hits


def batch_reflection_loss(judge: VLMJudge, batch: Batch, prompts: JudgePrompts) -> torch.Tensor:
    """`reflection_loss` of ORM examples asked the reflection question about their own prompt."""
    images = [s.image(e.image) for s, e in batch]
    questions = [prompts.reflection.format(prompt=e.prompt) for _, e in batch]
    return reflection_loss(judge, images, questions, [reflection_target(e.answer, e.reasons) for _, e in batch])
