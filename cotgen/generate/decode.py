"""One decoding step of a Llama language model (Janus's), one new token per row, without the
generic forward around it.

Per token, `LlamaModel.forward` builds a 4-D boolean mask, resolves the attention backend and passes
keyword arguments through decorators in every layer; for the small models cotgen runs on CPU that
bookkeeping and the masked SDPA kernel cost more than the matrix products. With a single query per
row nothing causal is left to mask, so this step runs the model's own modules (norms, projections,
rotary embedding, MLP) and does the attention as eager attention does: scores, the padding bias,
a float32 softmax, the weighted sum. Grouped key/value heads are broadcast, not copied.

The layers (`decode_layers`) take a function that stores each layer's new key and value and returns
the keys and values to attend over: the growing cache here (`decode_step`), or fixed-size buffers in
the static path (`static.py`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import Cache
from transformers.models.llama.modeling_llama import LlamaModel, apply_rotary_pos_emb


def padding_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(rows, length) 0/1 attention mask → (rows, 1, 1, length) additive bias (0 or the dtype's minimum)."""
    return (mask[:, None, None, :] == 0).to(dtype) * torch.finfo(dtype).min


Store = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]
"""(key, value, layer index) → the layer's keys and values to attend over, the new ones included."""


def decode_step(lm: LlamaModel, embeds: torch.Tensor, bias: torch.Tensor, positions: torch.Tensor, cache: Cache) -> torch.Tensor:
    """Final hidden states (rows, 1, hidden) for one new token per row; its keys and values go into `cache`.

    `embeds` (rows, 1, hidden), `bias` from `padding_bias` over every cached position plus this one,
    `positions` (rows, 1)."""
    return decode_layers(lm, embeds, bias, positions, cache.update)


def decode_layers(lm: LlamaModel, embeds: torch.Tensor, bias: torch.Tensor, positions: torch.Tensor, store: Store) -> torch.Tensor:
    """`decode_step` over any key/value storage: `store` keeps each layer's new key and value and
    returns what to attend over, which `bias` (rows, 1, 1, length) covers."""
    cos, sin = lm.rotary_emb(embeds, position_ids=positions)
    hidden = embeds
    rows = embeds.shape[0]
    for index, layer in enumerate(lm.layers[: lm.config.num_hidden_layers]):
        attention = layer.self_attn
        x = layer.input_layernorm(hidden)
        d = attention.head_dim
        q = attention.q_proj(x).view(rows, -1, 1, d)
        k = attention.k_proj(x).view(rows, -1, 1, d)
        v = attention.v_proj(x).view(rows, -1, 1, d)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        keys, values = store(k, v, index)
        heads, kv_heads = q.shape[1], keys.shape[1]
        q = q.view(rows, kv_heads, heads // kv_heads, d)  # query heads grouped under their key/value head
        scores = torch.matmul(q, keys.transpose(2, 3)) * attention.scaling + bias
        weights = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(weights, values).reshape(rows, 1, heads * d)
        hidden = hidden + attention.o_proj(out)
        hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
    return lm.norm(hidden)
