"""The autoregressive stage: a Janus language model learning image tokens from shapes-world prompts.

Training sequences are [<bos>, prompt words, <begin_of_image>, image tokens…], left-padded so that
images line up; position ids follow the attention mask, as in the decoding engine. With probability
`cfg_dropout` a prompt loses its words (padding in their place, BOS and begin-of-image kept): exactly
the unconditional prompt the engine builds, so guidance has something to contrast against.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers import (
    JanusConfig,
    JanusForConditionalGeneration,
    JanusVisionConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
)
from transformers.models.janus.modeling_janus import JanusVQVAE

from cotgen.models.janus import SpecialTokens, configure_generation, tokenizer_specials


def build_janus(
    vq: JanusVQVAE,
    tokenizer: PreTrainedTokenizerFast,
    image_size: int,
    hidden_size: int,
    layers: int,
    heads: int,
    intermediate_size: int,
) -> JanusForConditionalGeneration:
    """A Janus whose VQ is `vq` (weights copied) and whose language model is fresh."""
    grid = vq.config.num_patches
    special = tokenizer_specials(tokenizer)
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=grid * grid + 64,
        bos_token_id=special.bos,
        pad_token_id=special.pad,
        eos_token_id=tokenizer.eos_token_id,
    )
    # The understanding tower is unused for generation but part of every Janus checkpoint: keep it tiny.
    vision = JanusVisionConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=image_size,
        patch_size=image_size // grid, projection_dim=hidden_size, num_image_tokens=grid * grid,
    )  # fmt: skip
    vq_config = vq.config.to_dict()
    vq_config.update(projection_dim=hidden_size, image_token_embed_dim=hidden_size)
    config = JanusConfig(
        text_config=text, vision_config=vision, vq_config=vq_config, image_token_id=tokenizer.convert_tokens_to_ids("<image>")
    )
    model = JanusForConditionalGeneration(config)
    model.model.vqmodel.load_state_dict(vq.state_dict())
    configure_generation(model, special)
    return model


def pad_prompts(prompts: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists: (ids, attention mask)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    return ids, mask


def drop_prompts(ids: torch.Tensor, special: SpecialTokens, rate: float, rng: np.random.Generator) -> torch.Tensor:
    """Replace the words of a random `rate` of the prompts by padding (classifier-free dropout)."""
    drop = torch.from_numpy(rng.random(len(ids)) < rate)[:, None]
    words = (ids != special.bos) & (ids != special.boi) & (ids != special.pad)
    return ids.masked_fill(drop & words, special.pad)


def image_token_logits(model: JanusForConditionalGeneration, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
    """Generation-head logits for every image token, teacher-forced: (batch, tokens, codebook)."""
    text = model.get_input_embeddings()(prompt_ids)
    images = model.prepare_embeddings_for_image_generation(image_tokens[:, :-1])
    mask = torch.cat([prompt_mask, torch.ones_like(image_tokens[:, :-1])], dim=1)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    hidden = model.model.language_model(
        inputs_embeds=torch.cat([text, images], dim=1), attention_mask=mask, position_ids=positions
    ).last_hidden_state
    return model.model.generation_head(hidden[:, prompt_ids.shape[1] - 1 :])


def image_token_loss(model: JanusForConditionalGeneration, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the generation head on every image token, teacher-forced."""
    logits = image_token_logits(model, prompt_ids, prompt_mask, image_tokens)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), image_tokens.reshape(-1))
