"""Step-wise image decoding for Janus: stop, look, prune and branch paths mid-generation.

One batch holds every live path twice: rows [0, B) are conditional (the prompt), rows [B, 2B) are
unconditional (the prompt with every token but BOS and begin-of-image replaced by padding), and the
next token comes from the guided logits `uncond + scale · (cond − uncond)`, as in Janus and in
transformers' `generate(generation_mode="image")`. Prompts are left-padded; position ids follow the
attention mask, so a path's tokens do not depend on what else shares its batch.

A *step* is a group of raster rows of the token grid; `steps` of them make an image. Each path draws
its uniforms for every token up front from a torch.Generator seeded from (seed, prompt id, sample
index), and tokens are sampled by inverse CDF in one batched op, so its image is the same however
the paths are batched. `select` keeps, drops or repeats paths by selecting the rows of both halves of the
KV cache: a pruned path costs nothing afterwards, a repeated one branches.

The engine calls the language model directly instead of `generate()`, which breaks for Janus on some
transformers releases: the prompt goes through its forward, each next token through a lean step over
the same modules (`decode.py`). Its KV cache lives in buffers allocated once (`cache.py`). On a
GPU each token goes instead through a step of fixed shapes over buffers as long as the whole image
(`static.py`), which `torch.compile` replays as a CUDA graph: the same computation, without a launch per kernel.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import Cache, JanusForConditionalGeneration

from cotgen.generate.cache import preallocated_cache
from cotgen.generate.decode import decode_step, padding_bias
from cotgen.generate.sampling import Sampling
from cotgen.generate.static import StaticDecoder, StaticKV
from cotgen.models.janus import SpecialTokens, image_grid, pad_prompts, special_tokens


@dataclass(frozen=True)
class PathKey:
    """What identifies a path's randomness: the same key gives the same image."""

    seed: int
    prompt_id: str
    sample: int

    def uniforms(self, n: int) -> torch.Tensor:
        """The path's n uniform draws in [0, 1), one per image token."""
        digest = hashlib.sha256(f"{self.seed}|{self.prompt_id}|{self.sample}".encode()).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
        return torch.rand(n, generator=generator, dtype=torch.float64)


def checkpoint_rows(grid: int, steps: int) -> list[int]:
    """Rows finished after each checkpoint step, e.g. [4, 8, 12, 16] for 16 rows in 4 steps."""
    steps = min(steps, grid)
    return [round((i + 1) * grid / steps) for i in range(steps)]


@dataclass
class State:
    """Live paths mid-generation. Row i of `tokens` is path i; the cache holds 2×paths rows."""

    keys: list[PathKey]
    tokens: torch.Tensor  # (paths, decoded so far)
    cache: Cache | StaticKV  # StaticKV on the static path
    attention_mask: torch.Tensor  # (2·paths, prompt + decoded); static path: (2·paths, capacity), 0 past the last token
    positions: torch.Tensor  # (2·paths,) position id of the next input
    logits: torch.Tensor  # (paths, codebook) guided logits for the next token
    uniforms: torch.Tensor  # (paths, grid²) the draw that picks each token
    tokens_decoded: torch.Tensor  # (paths,) image tokens this path (and its ancestors) cost
    branch_counts: dict[PathKey, int] = field(default_factory=dict)  # branches spawned per key

    @property
    def num_paths(self) -> int:
        return len(self.keys)


class StepwiseGenerator:
    def __init__(self, model: JanusForConditionalGeneration, sampling: Sampling = Sampling(), static: bool | None = None):
        """`static`: decode through fixed-shape steps (`static.py`); by default on CUDA only, where
        they are compiled into CUDA graphs (on the CPU they would only attend over more slots)."""
        self.model = model.eval()
        self.sampling = sampling
        self.guidance = (model.generation_config.guidance_scale or 5.0) if sampling.guidance is None else sampling.guidance
        self.special: SpecialTokens = special_tokens(model)
        self.grid = image_grid(model)
        self._lm = model.model.language_model
        # transformers renamed `past_key_values` to `cache`; accept both releases.
        self._cache_kwarg = "cache" if "cache" in inspect.signature(self._lm.forward).parameters else "past_key_values"
        self.device = next(model.parameters()).device
        on_gpu = self.device.type == "cuda"
        if static is None:
            static = on_gpu
        self._static = StaticDecoder(self._lm, compile=on_gpu) if static else None
        self.image_tokens = 0
        """Image tokens decoded since the engine was built, over every path (a server reports it)."""

    # -- the step schedule -------------------------------------------------------------------
    def step_rows(self) -> list[int]:
        return checkpoint_rows(self.grid, self.sampling.steps)

    def rows_done(self, state: State) -> int:
        return state.tokens.shape[1] // self.grid

    def done(self, state: State) -> bool:
        return state.tokens.shape[1] == self.grid * self.grid

    # -- decoding ----------------------------------------------------------------------------
    def _prefill(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Cache) -> torch.Tensor:
        out = self._lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True, **{self._cache_kwarg: cache})
        return self._guided(out.last_hidden_state[:, -1, :])

    def _decode(self, state: State, embeds: torch.Tensor) -> torch.Tensor:
        """Guided logits after feeding `embeds` (one token per row); extends the cache and the mask."""
        positions = state.positions[:, None]
        if isinstance(state.cache, StaticKV):
            hidden = self._static(state.cache, embeds, positions, state.attention_mask)
        else:
            state.attention_mask = F.pad(state.attention_mask, (0, 1), value=1)
            hidden = decode_step(self._lm, embeds, padding_bias(state.attention_mask, embeds.dtype), positions, state.cache)
        return self._guided(hidden[:, -1, :])

    def _guided(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.model.model.generation_head(hidden).float()
        cond, uncond = logits.chunk(2)
        return uncond + self.guidance * (cond - uncond)

    @torch.no_grad()
    def start(self, input_ids: list[list[int]], keys: list[PathKey]) -> State:
        """Prefill the prompts (one per path; they end with begin-of-image) and return the state."""
        if len(input_ids) != len(keys) or not keys:
            raise ValueError(f"need one prompt per path, got {len(input_ids)} prompts for {len(keys)} keys")
        s = self.special
        for i, ids in enumerate(input_ids):
            if not ids or ids[-1] != s.boi:
                raise ValueError(f"prompt {i} must end with the begin-of-image token {s.boi}")
        cond, mask = pad_prompts(input_ids, s.pad)
        width = cond.shape[1]
        uncond = cond.masked_fill((cond != s.bos) & (cond != s.boi), s.pad)
        tokens = torch.cat([cond, uncond]).to(self.device)
        mask = torch.cat([mask, mask]).to(self.device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        capacity = width + self.grid * self.grid
        # The static path copies the prompt's keys and values into its own buffers: prefill only the prompt.
        cache = preallocated_cache(self.model.config.text_config.num_hidden_layers, capacity if self._static is None else width)
        embeds = self.model.get_input_embeddings()(tokens)
        logits = self._prefill(embeds, mask, positions, cache)
        if self._static is not None:
            cache = StaticKV(cache, capacity)
            mask = F.pad(mask, (0, capacity - width))
        return State(
            keys=list(keys),
            tokens=torch.zeros((len(keys), 0), dtype=torch.long, device=self.device),
            cache=cache,
            attention_mask=mask,
            positions=positions[:, -1] + 1,
            logits=logits,
            uniforms=self._uniforms(keys),
            tokens_decoded=torch.zeros(len(keys), dtype=torch.long),
        )

    def _uniforms(self, keys: list[PathKey]) -> torch.Tensor:
        return torch.stack([k.uniforms(self.grid * self.grid) for k in keys]).to(self.device)

    def _sample(self, logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        if self.sampling.temperature == 0:
            return logits.argmax(dim=-1)
        logits = logits / self.sampling.temperature
        if self.sampling.top_k:
            kth = logits.topk(min(self.sampling.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        # Inverse CDF: the first token whose cumulative probability exceeds the path's own draw
        # (float64, so zero-probability tokens are never picked through rounding).
        cdf = F.softmax(logits.double(), dim=-1).cumsum(dim=-1)
        picked = torch.searchsorted(cdf, (uniforms * cdf[:, -1])[:, None], right=True)
        return picked.squeeze(1).clamp(max=logits.shape[-1] - 1)

    @torch.no_grad()
    def step(self, state: State, rows: int | None = None) -> State:
        """Decode up to the next checkpoint step (or `rows` more rows); a finished state is returned as is."""
        total = self.grid * self.grid
        if rows is None:
            done = self.rows_done(state)
            target = next((r for r in self.step_rows() if r > done), self.grid) * self.grid
        else:
            target = min(total, state.tokens.shape[1] + rows * self.grid)
        while state.tokens.shape[1] < target:
            token = self._sample(state.logits, state.uniforms[:, state.tokens.shape[1]])
            state.tokens = torch.cat([state.tokens, token[:, None]], dim=1)
            state.tokens_decoded += 1
            self.image_tokens += state.num_paths
            if state.tokens.shape[1] == total:
                break  # the last token needs no forward pass
            embeds = self.model.prepare_embeddings_for_image_generation(token[:, None])
            embeds = torch.cat([embeds, embeds])  # both halves feed the same token
            state.logits = self._decode(state, embeds)
            state.positions = state.positions + 1
        return state

    # -- pruning and branching ---------------------------------------------------------------
    @torch.no_grad()
    def select(self, state: State, index: list[int]) -> State:
        """Keep the paths in `index`, in that order; an index repeated r times branches that path into
        r continuations (the first keeps its key, the others get new sample keys)."""
        if not index:
            raise ValueError("select needs at least one path to keep")
        if min(index) < 0 or max(index) >= state.num_paths:
            raise IndexError(f"path index out of range 0..{state.num_paths - 1}: {index}")
        paths = torch.tensor(index, device=self.device)
        state.cache.batch_select_indices(torch.cat([paths, paths + state.num_paths]))
        seen: set[int] = set()
        keys, uniforms = [], state.uniforms[paths]
        for row, i in enumerate(index):
            key = state.keys[i]
            if i in seen:  # a branch: a new key under the same prompt, with its own randomness
                count = state.branch_counts[key] = state.branch_counts.get(key, 0) + 1
                key = PathKey(key.seed, f"{key.prompt_id}/{key.sample}", count)
                uniforms[row] = self._uniforms([key])[0]
            seen.add(i)
            keys.append(key)
        state.keys, state.uniforms = keys, uniforms
        state.tokens = state.tokens[paths]
        state.logits = state.logits[paths]
        both = torch.cat([paths, paths + len(state.attention_mask) // 2])  # old path count
        state.attention_mask = state.attention_mask[both]
        state.positions = state.positions[both]
        state.tokens_decoded = state.tokens_decoded[paths.cpu()]
        return state

    # -- images --------------------------------------------------------------------------------
    @torch.no_grad()
    def decode_rows(self, tokens: torch.Tensor) -> np.ndarray:
        """Decode the first k full rows of each path: (paths, k·patch, width, 3) uint8."""
        rows = tokens.shape[1] // self.grid
        vq = self.model.model.vqmodel
        codes = F.normalize(vq.quantize.embedding(tokens[:, : rows * self.grid]), dim=-1)
        codes = codes.view(tokens.shape[0], rows, self.grid, -1).permute(0, 3, 1, 2)
        pixels = vq.decoder(vq.post_quant_conv(codes))
        return ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def preview(self, state: State, background: tuple[int, int, int] = (255, 255, 255)) -> list[Image.Image]:
        """Each path's partial image: the finished rows decoded, the rest left as blank canvas."""
        return self.previews(state.tokens, background)

    def previews(self, tokens: torch.Tensor, background: tuple[int, int, int] = (255, 255, 255)) -> list[Image.Image]:
        """The partial images of token prefixes (paths, decoded so far): whole rows decoded, the rest blank."""
        size = self.model.config.vision_config.image_size
        canvas = np.empty((tokens.shape[0], size, size, 3), dtype=np.uint8)
        canvas[:] = background
        if tokens.shape[1] >= self.grid:
            strip = self.decode_rows(tokens)
            canvas[:, : strip.shape[1]] = strip
        return [Image.fromarray(c) for c in canvas]

    def finish(self, state: State) -> tuple[torch.Tensor, list[Image.Image]]:
        """Decode every path to the end; returns the token grid (paths, grid²) and the images."""
        while not self.done(state):
            self.step(state)
        return state.tokens, [Image.fromarray(p) for p in self.decode_rows(state.tokens)]
