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
from transformers import JanusForConditionalGeneration, PreTrainedTokenizerFast
from transformers.models.janus.modeling_janus import JanusVQVAE

from cotgen.models.janus import SpecialTokens, configure_generation, janus_config, tokenizer_specials


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
    special = tokenizer_specials(tokenizer)
    config = janus_config(
        vq.config, vq.config.num_patches, image_size, len(tokenizer), hidden_size, layers, heads, intermediate_size,
        special, eos=tokenizer.eos_token_id, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )  # fmt: skip
    model = JanusForConditionalGeneration(config)
    model.model.vqmodel.load_state_dict(vq.state_dict())
    configure_generation(model, special)
    return model


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
