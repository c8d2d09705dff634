"""The language-model stage's pieces: a fresh or continued Janus, its batches and loss, checkpoints,
and the record of its training (stage.json) summed over continuations."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from transformers import JanusForConditionalGeneration

from cotgen.errors import InputError
from cotgen.machine import describe_machine
from cotgen.models.ar import build_janus, drop_prompts, image_token_loss
from cotgen.models.janus import SpecialTokens, load_generator, pad_prompts
from cotgen.train.generator.config import TrainGeneratorConfig
from cotgen.train.generator.dataset import CorrectivePrompts

FROZEN = ("model.vqmodel", "model.vision_model", "model.aligner")
"""Janus parts the language-model stage does not train: the VQ and the understanding tower."""


def previous_stage(folder: str) -> dict:
    """The training record (steps, minutes, samples, rounds, machines) of a generator folder to continue."""
    try:
        return json.loads((Path(folder) / "stage.json").read_text())
    except FileNotFoundError:
        raise InputError(f"ar.init_from: {folder} has no stage.json (the record of its training); continue from a folder train_generator wrote") from None


def start_ar(cfg: TrainGeneratorConfig, vq, tokenizer, rng: np.random.Generator) -> tuple[JanusForConditionalGeneration, np.random.Generator]:
    """The Janus to train (a fresh language model over `vq`, or `ar.init_from` continued) on
    `cfg.device`, and the generator of its batches."""
    s = cfg.ar
    if s.init_from:
        model = load_generator(s.init_from)[0]
        rng = np.random.default_rng([cfg.seed, previous_stage(s.init_from).get("rounds", 1)])  # a continuation must not replay earlier batches
        if model.get_input_embeddings().num_embeddings < len(tokenizer):  # trained before the feedback words
            model.resize_token_embeddings(len(tokenizer))
    else:
        model = build_janus(vq, tokenizer, cfg.image_size, s.hidden_size, s.layers, s.heads, s.intermediate_size)
    return model.to(cfg.device), rng


def trainable(model: JanusForConditionalGeneration) -> list[torch.nn.Parameter]:
    return [p for n, p in model.named_parameters() if not n.startswith(FROZEN)]


def draw_batch(
    prompts: CorrectivePrompts, image_tokens: torch.Tensor, size: int, special: SpecialTokens, cfg_dropout: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`size` scenes drawn with replacement: left-padded prompt ids (some corrective, some dropped for
    guidance), their attention mask, and the image tokens."""
    batch = rng.integers(len(prompts.prompts), size=size)
    ids, mask = pad_prompts([prompts.draw(i, rng) for i in batch], special.pad)
    return drop_prompts(ids, special, cfg_dropout, rng), mask, image_tokens[batch]


def batch_loss(model: JanusForConditionalGeneration, ids: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor, precision: str) -> torch.Tensor:
    """Image-token cross-entropy of a batch, under bf16 autocast when `precision` says so."""
    with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        return image_token_loss(model, ids.to(model.device), mask.to(model.device), tokens.to(model.device))


def save_generator(model: JanusForConditionalGeneration, tokenizer, guidance: float, out: Path) -> None:
    """The model with `guidance` as its default, and its tokenizer."""
    model.generation_config.guidance_scale = guidance  # transformers' name for the checkpoint's guidance
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def stage_record(cfg: TrainGeneratorConfig, steps: int, start: float) -> dict:
    """This run's training record; a continuation's counts the whole training, not just this run."""
    record = {"steps": steps, "minutes": round((time.time() - start) / 60, 1), "samples_seen": steps * cfg.ar.batch_size}
    machines = [describe_machine()]
    if cfg.ar.init_from:
        before = previous_stage(cfg.ar.init_from)
        record = {k: round(record[k] + before[k], 1) for k in record} | {"rounds": before.get("rounds", 1) + 1}
        machines = list(dict.fromkeys(before.get("machines", []) + machines))
    return record | {"machines": machines}
