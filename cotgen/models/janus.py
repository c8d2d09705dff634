"""Janus configurations (the one builder, and tiny random ones for tests), loading, and the prompt
conventions: special tokens, the generation prompt, left padding.

A Janus checkpoint generates images from a prompt that ends with its begin-of-image token; the
number of image tokens and the grid come from the vision config (image_size / patch_size per side),
and the VQ decoder's `num_patches` follows from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    JanusConfig,
    JanusForConditionalGeneration,
    JanusVisionConfig,
    JanusVQVAEConfig,
    LlamaConfig,
    PreTrainedTokenizerBase,
)  # fmt: skip

from cotgen.errors import InputError
from cotgen.models.presets import resolve


@dataclass(frozen=True)
class SpecialTokens:
    """The ids the image-generation prompt needs: its unconditional twin keeps only BOS and BOI."""

    bos: int
    pad: int
    boi: int


def special_tokens(model: JanusForConditionalGeneration) -> SpecialTokens:
    config = model.generation_config
    boi = (config.generation_kwargs or {}).get("boi_token_id")
    if config.bos_token_id is None or config.pad_token_id is None or boi is None:
        raise ValueError(
            "the model's generation_config needs bos_token_id, pad_token_id and generation_kwargs['boi_token_id']"
        )
    return SpecialTokens(bos=config.bos_token_id, pad=config.pad_token_id, boi=boi)


def tokenizer_specials(tokenizer: PreTrainedTokenizerBase) -> SpecialTokens:
    """Janus's conventions: the tokenizer's BOS and pad, and its `<begin_of_image>` token."""
    boi = tokenizer.convert_tokens_to_ids("<begin_of_image>")
    if boi is None or boi == tokenizer.unk_token_id:
        raise ValueError("the tokenizer has no <begin_of_image> token: not a Janus tokenizer")
    return SpecialTokens(bos=tokenizer.bos_token_id, pad=tokenizer.pad_token_id, boi=boi)


JANUS_PRO_FORMAT = "<|User|>: {prompt}\n\n<|Assistant|>:"
"""Janus-Pro's text-to-image conversation (its "deepseek" SFT format, empty system prompt)."""


def generation_prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """Prompt ids ending with <begin_of_image>. The embedded world tokenizer appends that token itself;
    any other Janus tokenizer gets Janus-Pro's conversation format with the token after it, as in
    deepseek-ai/Janus `generation_inference.py` (the tokenizer adds BOS)."""
    boi = tokenizer_specials(tokenizer).boi
    ids = tokenizer(prompt).input_ids
    if ids and ids[-1] == boi:
        return ids
    return [*tokenizer(JANUS_PRO_FORMAT.format(prompt=prompt)).input_ids, boi]


def load_generator(name_or_path: str | Path = "embedded") -> tuple[JanusForConditionalGeneration, PreTrainedTokenizerBase]:
    """A Janus checkpoint folder, preset name (`cotgen.models.presets`), hub id or "embedded" as an
    eval-mode model and its tokenizer, with the generation config's special tokens set (transformers
    does not keep `generation_kwargs` on load)."""
    path = resolve(name_or_path, "generator")
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a model folder (no config.json)")
    model = JanusForConditionalGeneration.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    configure_generation(model, tokenizer_specials(tokenizer))
    return model, tokenizer


def image_grid(model: JanusForConditionalGeneration) -> int:
    """Tokens per side of the square image-token grid."""
    vision = model.config.vision_config
    return vision.image_size // vision.patch_size


PROMPT_POSITIONS = 128
"""Positions the language model keeps for the prompt, before the image tokens."""


def janus_config(
    vq: JanusVQVAEConfig,
    grid: int,
    image_size: int,
    vocab_size: int,
    hidden_size: int,
    layers: int,
    heads: int,
    intermediate_size: int,
    special: SpecialTokens,
    eos: int,
    image_token_id: int,
) -> JanusConfig:
    """A Janus generating `grid`×`grid` image tokens of `image_size` px through the VQ `vq`, with a
    Llama language model of these sizes. The understanding tower is unused for generation but part
    of every Janus checkpoint: it is kept tiny."""
    text = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=grid * grid + PROMPT_POSITIONS,
        bos_token_id=special.bos,
        pad_token_id=special.pad,
        eos_token_id=eos,
    )
    vision = JanusVisionConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=image_size,
        patch_size=image_size // grid, projection_dim=hidden_size, num_image_tokens=grid * grid,
    )  # fmt: skip
    vq = {**vq.to_dict(), "projection_dim": hidden_size, "image_token_embed_dim": hidden_size}
    return JanusConfig(text_config=text, vision_config=vision, vq_config=vq, image_token_id=image_token_id)


def tiny_janus_config(
    grid: int = 8,
    patch_pixels: int = 4,
    vocab_size: int = 64,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    codebook: int = 128,
    vq_channels: tuple[int, ...] = (1, 1, 2),
    special: SpecialTokens = SpecialTokens(bos=1, pad=0, boi=3),
) -> JanusConfig:
    """A small random Janus with real Janus classes: `grid`×`grid` image tokens decoded by a VQ whose
    `len(vq_channels) - 1` downsamplings map each token to 2**(len-1) pixels per side."""
    vq = JanusVQVAEConfig(
        embed_dim=8, num_embeddings=codebook, latent_channels=32, base_channels=32,
        channel_multiplier=list(vq_channels), num_res_blocks=1,
    )  # fmt: skip
    return janus_config(
        vq, grid, grid * patch_pixels, vocab_size, hidden_size, layers, heads, hidden_size * 2, special,
        eos=2, image_token_id=vocab_size - 1,
    )  # fmt: skip


def pad_prompts(prompts: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists so that their ends line up: (ids, attention mask)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    return ids, mask


def configure_generation(model: JanusForConditionalGeneration, special: SpecialTokens) -> None:
    """Set the generation-config fields `generate(generation_mode="image")` and the engine read."""
    config = model.generation_config
    config.bos_token_id = special.bos
    config.pad_token_id = special.pad
    config.generation_kwargs = {"boi_token_id": special.boi}
