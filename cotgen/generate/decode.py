"""One decoding step of a Llama language model (Janus's), one new token per row, without the
generic forward around it.

Per token, `LlamaModel.forward` builds a 4-D boolean mask, resolves the attention backend and passes
keyword arguments through decorators in every layer; for the small models cotgen runs on CPU that
bookkeeping and the masked SDPA kernel cost more than the matrix products. With a single query per
row nothing causal is left to mask, so this step runs the model's own weights (norms, projections,
rotary embedding, MLP) and does the attention as eager attention does: scores, the padding bias,
a float32 softmax, the weighted sum. Grouped key/value heads are broadcast, not copied.

`plan_decoding` prepares what every step reuses: the query, key and value projections' weights
concatenated into one matrix product (the MLP's gate and up projections likewise), and the rotary
embedding's cosines and sines for every position the cache can hold; the norms run as one fused
kernel. Fewer, larger operations on a small batch, the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import Cache
from transformers.models.llama.modeling_llama import LlamaModel, apply_rotary_pos_emb


@dataclass(frozen=True)
class FusedLayer:
    """One decoder layer's projections with the weights of those that share an input concatenated."""

    qkv_weight: torch.Tensor
    qkv_bias: torch.Tensor | None
    qkv_sizes: tuple[int, int, int]
    gate_up_weight: torch.Tensor
    gate_up_bias: torch.Tensor | None


def _concat(linears: list[torch.nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    weight = torch.cat([linear.weight for linear in linears])
    biases = [linear.bias for linear in linears]
    return weight, (torch.cat(biases) if all(b is not None for b in biases) else None)


@dataclass(frozen=True)
class DecodePlan:
    layers: list[FusedLayer]
    cos: torch.Tensor  # (capacity, head_dim) rotary cosines by position
    sin: torch.Tensor


@torch.no_grad()
def plan_decoding(lm: LlamaModel, capacity: int, like: torch.Tensor) -> DecodePlan:
    """The plan for decoding up to `capacity` positions with `lm`'s weights as they are now (plan
    again after the weights change: a generation after a training step must not use stale copies).
    `like`: a tensor of the embeddings' dtype and device."""
    cos, sin = lm.rotary_emb(like, position_ids=torch.arange(capacity, device=like.device)[None])
    return DecodePlan(fuse_layers(lm), cos[0], sin[0])


def fuse_layers(lm: LlamaModel) -> list[FusedLayer]:
    """Every layer's projections with concatenated weights, copied from the model as it is now."""
    fused = []
    for layer in lm.layers[: lm.config.num_hidden_layers]:
        attention, mlp = layer.self_attn, layer.mlp
        projections = [attention.q_proj, attention.k_proj, attention.v_proj]
        qkv_weight, qkv_bias = _concat(projections)
        gate_up_weight, gate_up_bias = _concat([mlp.gate_proj, mlp.up_proj])
        sizes = tuple(p.out_features for p in projections)
        fused.append(FusedLayer(qkv_weight, qkv_bias, sizes, gate_up_weight, gate_up_bias))
    return fused


def padding_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(rows, length) 0/1 attention mask → (rows, 1, 1, length) additive bias (0 or the dtype's minimum)."""
    return (mask[:, None, None, :] == 0).to(dtype) * torch.finfo(dtype).min


def rms_norm(norm: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """`LlamaRMSNorm` as one kernel (bitwise equal in float32)."""
    return F.rms_norm(hidden, norm.weight.shape, norm.weight, norm.variance_epsilon)


def decode_step(lm: LlamaModel, plan: DecodePlan, embeds: torch.Tensor, bias: torch.Tensor, positions: torch.Tensor, cache: Cache) -> torch.Tensor:
    """Final hidden states (rows, 1, hidden) for one new token per row; its keys and values go into `cache`.

    `plan` from `plan_decoding`, `embeds` (rows, 1, hidden), `bias` from `padding_bias` over every
    cached position plus this one, `positions` (rows, 1)."""
    cos, sin = plan.cos[positions], plan.sin[positions]
    hidden = embeds
    rows = embeds.shape[0]
    for index, (layer, proj) in enumerate(zip(lm.layers, plan.layers)):
        attention, mlp = layer.self_attn, layer.mlp
        d = attention.head_dim
        q, k, v = F.linear(rms_norm(layer.input_layernorm, hidden), proj.qkv_weight, proj.qkv_bias).split(proj.qkv_sizes, dim=-1)
        q, k = apply_rotary_pos_emb(q.view(rows, -1, 1, d), k.view(rows, -1, 1, d), cos, sin)
        keys, values = cache.update(k, v.view(rows, -1, 1, d), index)
        heads, kv_heads = q.shape[1], keys.shape[1]
        q = q.view(rows, kv_heads, heads // kv_heads, d)  # query heads grouped under their key/value head
        scores = torch.matmul(q, keys.transpose(2, 3)) * attention.scaling + bias
        probs = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, values).reshape(rows, 1, heads * d)
        hidden = hidden + attention.o_proj(out)
        gate, up = F.linear(rms_norm(layer.post_attention_layernorm, hidden), proj.gate_up_weight, proj.gate_up_bias).chunk(2, dim=-1)
        hidden = hidden + mlp.down_proj(mlp.act_fn(gate) * up)
    return rms_norm(lm.norm, hidden)
