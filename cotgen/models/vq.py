"""Training a `JanusVQVAE` image tokenizer, the way Janus's own (LlamaGen) tokenizer works.

Janus decodes tokens through `get_codebook_entry`, which L2-normalises codebook vectors, so the
tokenizer is trained on the unit sphere: encoder outputs and codes are both normalised and matched by
cosine similarity. The saved codebook is stored normalised, which makes `JanusVQVAE.encode`'s plain
Euclidean nearest-code search pick the same codes as training did.

`JanusVQVAE.forward` decodes from token ids, so no gradient would reach the encoder through it:
training goes encoder → quant_conv → quantise (straight-through) → post_quant_conv → decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import JanusVQVAEConfig
from transformers.models.janus.modeling_janus import JanusVQVAE

from cotgen.world.vocab import BACKGROUND


def pixels_to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) arrays -> float (B, 3, H, W) in [-1, 1], Janus's pixel range."""
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return batch / 127.5 - 1


def tensor_to_pixels(values: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3)."""
    return ((values.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@dataclass
class QuantizeOutput:
    latents: torch.Tensor  # normalised encoder outputs, (B, C, h, w)
    quantized: torch.Tensor  # straight-through, (B, C, h, w)
    tokens: torch.Tensor  # (B, h*w)
    commitment: torch.Tensor  # codebook + beta * commitment loss


def quantize(vq: JanusVQVAE, pixels: torch.Tensor, beta: float = 0.25) -> QuantizeOutput:
    z = F.normalize(vq.quant_conv(vq.encoder(pixels)), dim=1)
    codebook = F.normalize(vq.quantize.embedding.weight, dim=1)
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    tokens = (flat @ codebook.T).argmax(dim=1)
    codes = codebook[tokens].view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
    commitment = F.mse_loss(codes, z.detach()) + beta * F.mse_loss(z, codes.detach())
    return QuantizeOutput(z, z + (codes - z).detach(), tokens.view(z.shape[0], -1), commitment)


def reconstruct(vq: JanusVQVAE, quantized: torch.Tensor) -> torch.Tensor:
    return vq.decoder(vq.post_quant_conv(quantized))


def object_weights(pixels: torch.Tensor, object_weight: float) -> torch.Tensor:
    """Per-pixel loss weights: objects are a small part of a white canvas, so they count more."""
    white = torch.tensor(BACKGROUND, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1) / 127.5 - 1
    on_object = (pixels - white).abs().amax(dim=1, keepdim=True) > 0.1
    return 1 + (object_weight - 1) * on_object.float()


def restart_dead_codes(vq: JanusVQVAE, usage: torch.Tensor, latents: torch.Tensor) -> int:
    """Move never-used codes onto random encoder outputs of the current batch; returns how many."""
    dead = (usage == 0).nonzero().flatten()
    if len(dead) == 0:
        return 0
    flat = latents.detach().permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    picks = flat[torch.randint(len(flat), (len(dead),))]
    with torch.no_grad():
        vq.quantize.embedding.weight[dead] = picks + 0.01 * torch.randn_like(picks)
    return len(dead)


def finalize_codebook(vq: JanusVQVAE) -> None:
    """Store the codebook normalised, so `encode` (Euclidean) agrees with training (cosine)."""
    with torch.no_grad():
        vq.quantize.embedding.weight.copy_(F.normalize(vq.quantize.embedding.weight, dim=1))


def build_vq(config: JanusVQVAEConfig) -> JanusVQVAE:
    vq = JanusVQVAE(config)
    vq.train()  # JanusVQVAE puts itself in eval mode: Janus ships it frozen
    return vq
