"""What the stages and the final evaluation measure on: held-out records, their rendered scenes, and
the tokenizer's ceiling."""

from __future__ import annotations

import torch
from PIL import Image
from transformers.models.janus.modeling_janus import JanusVQVAE

from cotgen.evaluate.exact import evaluate_image
from cotgen.models.vq import finalize_codebook, pixels_to_tensor, tensor_to_pixels
from cotgen.prompts import Record
from cotgen.world.records import evaluation_records, first_per_tag
from cotgen.world.render import render_array
from cotgen.world.sampler import sample_scene


def spaced_records(n: int) -> list[Record]:
    """n held-out records taken at even steps through the 553 (tags in order): a quick measurement."""
    return evaluation_records()[:: max(1, 553 // n)][:n]


def final_records(per_tag: int) -> list[Record]:
    """The final evaluation's records: the first `per_tag` of each tag, or all 553 (per_tag 0)."""
    return first_per_tag(evaluation_records(), per_tag) if per_tag else evaluation_records()


def scene_pixels(records: list[Record], size: int) -> torch.Tensor:
    """A rendered scene of each record (scene i seeded by i), as the VQ's input pixels."""
    return pixels_to_tensor([render_array(sample_scene(r, i, size)) for i, r in enumerate(records)])


def vq_ceiling(vq: JanusVQVAE, records: list[Record], pixels: torch.Tensor) -> tuple[float, int]:
    """Share of scenes whose verdict survives `encode` → `decode` (the shipped path), and the number
    of codes used. Normalises the codebook first, which training on the sphere leaves unchanged."""
    finalize_codebook(vq)
    vq.eval()
    with torch.no_grad():
        tokens = vq.encode(pixels.to(vq.device)).image_tokens.view(len(pixels), -1)
        decoded = tensor_to_pixels(vq.decode(tokens))
    vq.train()
    kept = sum(evaluate_image(Image.fromarray(p), r).correct for p, r in zip(decoded, records))
    return kept / len(records), len(torch.unique(tokens))
