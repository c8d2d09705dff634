"""The judge's training losses: the vision stage's per-token object classes, the answer token,
reflections and the census (teacher-forced, `reflection`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cotgen.errors import InputError
from cotgen.evaluate.reader import Reading
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import VLMJudge
from cotgen.judge.where import visual_features
from cotgen.train.judge.cells import CELL_COLORS, CELL_SHAPES
from cotgen.train.judge.config import JudgeModelConfig
from cotgen.train.judge.examples import ANSWERS, Example, ExampleSet
from cotgen.train.judge.reading import (
    CENSUS_QUESTION,
    CENTRE_CLASSES,
    READ_TASKS,
    census_history,
    census_text,
    centre_targets,
    reading_target,
)
from cotgen.train.judge.reflection import reflection_target, target_loss
from cotgen.world.records import records_by_prompt

CENTRED_WEIGHT = 4.0
"""Weight of a visual token with something centred in its cell against an empty one (about 1 in 20)."""
Batch = list[tuple[ExampleSet, Example]]
"""A training batch, as `BalancedSampler.draw` returns it."""


def visual_cells(spec: JudgeModelConfig) -> int:
    """Merged visual tokens per side of an image."""
    return spec.image_size // (spec.patch_size * spec.merge_size)


def visual_cells_of(judge: VLMJudge) -> int:
    """Merged visual tokens per side of the images the judge's processor makes."""
    p = judge.processor.image_processor
    return math.isqrt(p.size["longest_edge"]) // (p.patch_size * p.merge_size)


def cell_head(judge: VLMJudge) -> torch.nn.Linear:
    """The vision stage's throwaway head: a visual token's features → colour and shape logits."""
    classes = len(CELL_COLORS) + len(CELL_SHAPES)
    return torch.nn.Linear(judge.model.config.text_config.hidden_size, classes).to(judge.model.device)


def cell_loss(judge: VLMJudge, head: torch.nn.Linear, images, colors: torch.Tensor, shapes: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy of each merged visual token's object colour and shape, and the share of tokens
    showing an object whose colour and shape are both right."""
    colors, shapes = colors.to(judge.model.device), shapes.to(judge.model.device)
    logits = head(visual_features(judge, images))
    color_logits, shape_logits = logits[:, : len(CELL_COLORS)], logits[:, len(CELL_COLORS) :]
    loss = F.cross_entropy(color_logits.float(), colors) + F.cross_entropy(shape_logits.float(), shapes)
    occupied = colors > 0
    hits = ((color_logits.argmax(-1) == colors) & (shape_logits.argmax(-1) == shapes))[occupied].float().mean().item()
    return loss, hits


def centre_head(judge: VLMJudge, tied: bool = False) -> torch.nn.Module:
    """The reading judge's throwaway perception head: a visual token's features → `CENTRE_CLASSES`
    logits; a linear layer, or tied to the language model's word embeddings (`WordTiedHead`)."""
    if tied:
        return WordTiedHead(judge).to(judge.model.device)
    return torch.nn.Linear(judge.model.config.text_config.hidden_size, len(CENTRE_CLASSES)).to(judge.model.device)


class WordTiedHead(torch.nn.Module):
    """Scores a visual token against the language model's own input embeddings of the words a reading
    writes: " red" + " circle" for a red circle, " none" for an empty cell (a learnt vector for an
    unrecognised blob). Trained with it, a visual token showing a red circle lies near the words
    " red" and " circle" as the question and the reading embed them, so the language model can find
    the tokens of a class the way it matches a repeated word (the linear probe of
    bench/judge_perception.py shows that the tokens know what they show; the readings do not)."""

    def __init__(self, judge: VLMJudge):
        super().__init__()
        words = sorted({w for c in CENTRE_CLASSES[2:] for w in c.split(" ")} | {"none"})
        tokens = single_tokens(judge, [" " + w for w in words])
        ids = {w: tokens[" " + w] for w in words}
        # a method, not a submodule: the embeddings are the language model's parameters, not the head's
        self.embed = judge.model.get_input_embeddings
        pairs = [[ids["none"], ids["none"]], *([ids[w] for w in c.split(" ")] for c in CENTRE_CLASSES[2:])]
        self.register_buffer("words", torch.tensor(pairs), persistent=False)
        self.blob = torch.nn.Parameter(torch.zeros(self.embed().embedding_dim))
        self.scale = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        vectors = self.embed()(self.words).sum(1)  # (classes but blob, hidden)
        classes = torch.cat([vectors[:1], self.blob[None], vectors[1:]])
        return self.scale * features @ classes.T.to(features.dtype)


def centre_loss(judge: VLMJudge, head: torch.nn.Linear, images, readings: Sequence[Reading]) -> tuple[torch.Tensor, float]:
    """Cross-entropy of what is centred in each visual token's cell (`centre_targets`; tokens with
    something centred weigh more, there are few of them), and the share of images whose every token
    is right."""
    targets = centre_target_ids(judge, readings).flatten().to(judge.model.device)
    logits = head(visual_features(judge, images)).float()
    exact = (logits.argmax(-1) == targets).view(len(readings), -1).all(1).float().mean().item()
    return centre_cross_entropy(logits, targets), exact


def centre_target_ids(judge: VLMJudge, readings: Sequence[Reading]) -> torch.Tensor:
    """(images, tokens) index in CENTRE_CLASSES of what each reading finds centred in each visual token's cell."""
    cells = visual_cells_of(judge)
    p = judge.processor.image_processor
    return torch.tensor([centre_targets(r, cells, p.patch_size * p.merge_size * cells) for r in readings])


def centre_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (tokens, CENTRE_CLASSES) logits, tokens with something centred weighing
    `CENTRED_WEIGHT` times the empty ones."""
    weights = 1 + (CENTRED_WEIGHT - 1) * (targets > 0).float()
    return (F.cross_entropy(logits, targets, reduction="none") * weights).sum() / weights.sum()


def single_tokens(judge: VLMJudge, words: Sequence[str]) -> dict[str, int]:
    """The id of each word, which the judge's tokenizer must write as one token."""
    ids = {}
    for word in words:
        encoded = judge.processor.tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) != 1:
            raise InputError(f"the judge's tokenizer writes {word!r} as {len(encoded)} tokens, expected one")
        ids[word] = encoded[0]
    return ids


def answer_ids(judge: VLMJudge) -> dict[str, int]:
    """The single token of each answer, "yes" and "no", in the judge's tokenizer."""
    return single_tokens(judge, ANSWERS)


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


def read_first(examples: ExampleSet, e: Example, answer: str, every_class: bool = False) -> str:
    """`answer` after the reading of the example's image for its prompt (`reading_target`)."""
    return reading_target(examples.reading(e.image), records_by_prompt()[e.prompt], answer, every_class)


def answer_histories(batch: Batch, census_turn: float, turns: np.random.Generator) -> list[tuple[tuple[str, str], ...]]:
    """The chat before each example's question: its own, after the census (`census_history`) for a
    share `census_turn` of the outcome examples (drawn from `turns`, untouched when the share is 0)."""
    if not census_turn:
        return [e.history for _, e in batch]
    after = turns.random(len(batch)) < census_turn
    return [census_history(s.reading(e.image), e.history) if a and e.task in READ_TASKS else e.history for (s, e), a in zip(batch, after)]


def batch_reflection_loss(
    judge: VLMJudge, batch: Batch, prompts: JudgePrompts, reads: bool = False, every_class: bool = False
) -> torch.Tensor:
    """`target_loss` of ORM examples asked the reflection question about their own prompt; with
    `reads`, the reflection follows the reading of the image (of `every_class`), as the outcome answer does."""
    images = [s.image(e.image) for s, e in batch]
    questions = [prompts.reflection.format(prompt=e.prompt) for _, e in batch]
    targets = [reflection_target(e.answer, e.reasons) for _, e in batch]
    if reads:
        targets = [read_first(s, e, t, every_class) for (s, e), t in zip(batch, targets)]
    return target_loss(judge, images, questions, targets)


def batch_census_loss(judge: VLMJudge, batch: Batch) -> torch.Tensor:
    """`target_loss` of the census question about each example's image, answered with every class's
    count and colours as the evaluator reads the image (`census_text`)."""
    images = [s.image(e.image) for s, e in batch]
    return target_loss(judge, images, [CENSUS_QUESTION] * len(batch), [census_text(s.reading(e.image)) for s, e in batch])
