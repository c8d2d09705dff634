"""A decode step with the same shapes at every token, so that on a GPU it runs as one CUDA graph.

The dynamic step (`decode.py` over `cache.py`) attends over the filled part of the KV cache, whose
length grows by one each token: a new shape every step, which CUDA graphs cannot replay. Here each
layer's keys and values live in buffers over the whole capacity (prompt + grid² image tokens),
allocated once per run; a step writes its key and value at a slot given as a tensor and attends
over every slot, the unwritten ones masked like padding. Their bias is the dtype's minimum, so they
weigh exactly zero: the logits differ from the dynamic step's only by the order in which the matmul
kernel, chosen by shape, sums (about 1e-7 in float32), so the tokens are the same but at near-ties.
On CUDA the step is compiled with `torch.compile(mode="reduce-overhead")`; the buffers are marked
static so that the graph writes into them in place instead of copying them in and out. Pruning and
branching select rows of the buffers at checkpoint steps: a new row count is a new shape, so one
more graph.
"""

from __future__ import annotations

import functools

import torch
from transformers import Cache
from transformers.models.llama.modeling_llama import LlamaModel

from cotgen.generate.decode import decode_layers, padding_bias


class StaticKV:
    """Per layer a key and a value buffer (rows, kv heads, capacity, head dim), and the next slot to write."""

    def __init__(self, prefilled: Cache, capacity: int):
        """Buffers holding `prefilled`'s keys and values in their first positions, zeros after them."""
        self.keys = [_buffer(layer.keys, capacity) for layer in prefilled.layers]
        self.values = [_buffer(layer.values, capacity) for layer in prefilled.layers]
        # A tensor, not an int: the compiled step reads it as an input, so one graph serves every slot.
        self.slot = torch.tensor([prefilled.get_seq_length()], device=self.keys[0].device)

    def batch_select_indices(self, rows: torch.Tensor) -> None:
        """Keep (or repeat) the buffers' rows `rows`: new buffers, allocated here only."""
        self.keys = [_static(k.index_select(0, rows)) for k in self.keys]
        self.values = [_static(v.index_select(0, rows)) for v in self.values]


def _buffer(filled: torch.Tensor, capacity: int) -> torch.Tensor:
    # Zeros, not empty memory: a masked slot's weight is exactly 0, but 0 · NaN would still be NaN.
    buffer = filled.new_zeros((*filled.shape[:2], capacity, filled.shape[3]))
    buffer[:, :, : filled.shape[2]] = filled
    return _static(buffer)


def _static(buffer: torch.Tensor) -> torch.Tensor:
    torch._dynamo.mark_static_address(buffer)
    return buffer


def static_step(
    lm: LlamaModel, embeds: torch.Tensor, positions: torch.Tensor, slot: torch.Tensor, mask: torch.Tensor,
    keys: list[torch.Tensor], values: list[torch.Tensor],
) -> torch.Tensor:  # fmt: skip
    """Final hidden states (rows, 1, hidden) for one new token per row, its keys and values written at
    `slot` ((1,) long) of `keys`/`values`; `mask` (rows, capacity) is 1 where a row attends, `slot` included."""

    def store(k: torch.Tensor, v: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return keys[index].index_copy_(2, slot, k), values[index].index_copy_(2, slot, v)

    return decode_layers(lm, embeds, padding_bias(mask, embeds.dtype), positions, store)


class StaticDecoder:
    """`static_step` for one language model, compiled into CUDA graphs on a GPU and eager elsewhere."""

    def __init__(self, lm: LlamaModel, compile: bool):
        step = functools.partial(static_step, lm)
        self._step = torch.compile(step, mode="reduce-overhead", fullgraph=False, dynamic=False) if compile else step

    def __call__(self, kv: StaticKV, embeds: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One token per row at `kv.slot`: marks the slot in `mask` (in place), decodes, moves the slot on."""
        mask.index_fill_(1, kv.slot, 1)
        hidden = self._step(embeds, positions, kv.slot, mask, kv.keys, kv.values)
        kv.slot += 1  # in place, on the device: no host sync per token
        return hidden
