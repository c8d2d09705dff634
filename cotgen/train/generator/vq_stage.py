"""The VQ stage's pieces: a fresh or continued `JanusVQVAE`, and its training loss (`cotgen.models.vq`:
encoder → quantise on the unit sphere, straight-through → decoder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import JanusVQVAEConfig
from transformers.models.janus.modeling_janus import JanusVQVAE

from cotgen.errors import InputError
from cotgen.models.vq import QuantizeOutput, build_vq, object_weights, quantize, reconstruct
from cotgen.train.generator.config import TrainGeneratorConfig


def start_vq(cfg: TrainGeneratorConfig, rng: np.random.Generator) -> tuple[JanusVQVAE, dict, np.random.Generator]:
    """The VQ to train (fresh, or `vq.init_from` continued), the record of its earlier training
    (steps, minutes), and the generator of its batches."""
    s = cfg.vq
    before = {"steps": 0, "minutes": 0.0}
    if s.init_from:
        vq = JanusVQVAE.from_pretrained(s.init_from).train()
        if (vq.config.num_patches, vq.config.num_embeddings) != (s.grid, s.codebook):
            raise InputError(f"vq.init_from: {s.init_from} has grid {vq.config.num_patches} and {vq.config.num_embeddings} codes, the config says {s.grid} and {s.codebook}")
        before = json.loads((Path(s.init_from) / "stage.json").read_text())
        rng = np.random.default_rng([cfg.seed, before["steps"]])  # a continuation must not replay earlier batches
    else:
        vq = build_vq(JanusVQVAEConfig(
            embed_dim=8, num_embeddings=s.codebook, latent_channels=s.latent_channels, base_channels=s.base_channels,
            channel_multiplier=s.channel_multiplier, num_res_blocks=1, num_patches=s.grid,
        ))  # fmt: skip
    if cfg.image_size // 2 ** (len(vq.config.channel_multiplier) - 1) != s.grid:
        raise InputError(f"vq.grid: {s.grid} does not match image_size {cfg.image_size} and channel_multiplier {vq.config.channel_multiplier}")
    return vq.to(cfg.device), before, rng


def vq_loss(vq: JanusVQVAE, pixels: torch.Tensor, object_weight: float) -> tuple[torch.Tensor, torch.Tensor, QuantizeOutput]:
    """The loss to minimise, its reconstruction part (L1 + L2, object pixels weighted up) and the quantisation."""
    q = quantize(vq, pixels)
    error = reconstruct(vq, q.quantized) - pixels
    weights = object_weights(pixels, object_weight)
    reconstruction = (weights * error.abs()).mean() + (weights * error**2).mean()
    return reconstruction + q.commitment, reconstruction, q
