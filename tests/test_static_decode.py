"""The static-shape decode path (`cotgen/generate/static.py`) against the dynamic one, on the CPU (eager).

Tokens must be identical. Logits are compared with a tight tolerance instead: the masked slots weigh
exactly 0, but the CPU's batched matmul picks its kernel by the matrix shapes, so the query·key dot
products over a head's dimensions are summed in another order when they span the whole capacity
instead of the filled part (about 1e-7 apart)."""

import pytest
import torch
from tiny_models import path_keys, tiny_janus

from cotgen.generate import Sampling, StepwiseGenerator
from cotgen.generate.static import StaticKV

PROMPTS = [[1, 10, 11, 12, 3], [1, 20, 21, 3], [1, 30, 31, 32, 33, 34, 3], [1, 40, 3]]  # left-padded to 7
GREEDY = Sampling(guidance=3.0, temperature=0, steps=4)
SAMPLED = Sampling(guidance=3.0, temperature=1.0, top_k=0, steps=4)


@pytest.fixture(scope="module")
def model():
    return tiny_janus()


def lockstep(model, sampling: Sampling, prompts: list[list[int]], selects: dict[int, list[int]] | None = None) -> torch.Tensor:
    """Run the dynamic and the static engine side by side, checkpoint step by checkpoint step, applying
    `selects` (rows done → index) to both; their tokens must agree at every step. Returns the tokens."""
    dynamic, static = StepwiseGenerator(model, sampling, static=False), StepwiseGenerator(model, sampling, static=True)
    states = [dynamic.start(prompts, path_keys(len(prompts))), static.start(prompts, path_keys(len(prompts)))]
    assert not isinstance(states[0].cache, StaticKV) and isinstance(states[1].cache, StaticKV)
    while not dynamic.done(states[0]):
        for engine, state in zip((dynamic, static), states):
            engine.step(state)
            if index := (selects or {}).get(engine.rows_done(state)):
                engine.select(state, index)
        assert torch.equal(states[0].tokens, states[1].tokens)
        assert states[0].keys == states[1].keys
        torch.testing.assert_close(states[0].logits, states[1].logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(states[0].tokens_decoded, states[1].tokens_decoded)
    return states[1].tokens


def test_greedy_static_matches_dynamic_and_transformers_generate(model):
    lockstep(model, GREEDY, PROMPTS)  # prompts of 3 to 7 tokens in one batch
    prompts = [PROMPTS[0], [1, 20, 21, 22, 3]]  # equal lengths: generate() does not shift positions for padding
    reference = model.generate(
        torch.tensor(prompts), attention_mask=torch.ones(2, 5, dtype=torch.long),
        generation_mode="image", do_sample=False, guidance_scale=GREEDY.guidance,
    )  # fmt: skip
    assert torch.equal(lockstep(model, GREEDY, prompts), reference)


def test_sampled_static_matches_dynamic_and_ignores_batch_mates(model):
    prompts = [PROMPTS[i % 4] for i in range(6)]
    together = lockstep(model, SAMPLED, prompts)
    engine = StepwiseGenerator(model, SAMPLED, static=True)
    alone = torch.cat([engine.finish(engine.start([p], [k]))[0] for p, k in zip(prompts, path_keys(6))])
    assert torch.equal(together, alone)


def test_prune_and_branch_match_dynamic(model):
    # After 2 of 8 rows drop paths 0 and 2 and branch path 1; after 4 rows prune again and branch a branch.
    tokens = lockstep(model, SAMPLED, PROMPTS, {2: [3, 1, 1], 4: [2, 0, 2]})
    assert tokens.shape == (3, 64)
    assert torch.equal(tokens[0, :32], tokens[2, :32]) and not torch.equal(tokens[0], tokens[2])


def test_static_buffers_are_allocated_once_per_run(model):
    engine = StepwiseGenerator(model, GREEDY, static=True)
    state = engine.start(PROMPTS, path_keys(4))
    kv = state.cache
    capacity = 7 + 64  # the widest prompt + 8×8 image tokens
    assert all(b.shape[0] == 8 and b.shape[2] == capacity for b in kv.keys + kv.values)  # both CFG halves
    assert state.attention_mask.shape == (8, capacity) and state.attention_mask[:, 7:].sum() == 0
    pointers = [b.data_ptr() for b in kv.keys + kv.values]
    engine.step(state)
    engine.step(state, rows=1)
    assert [b.data_ptr() for b in kv.keys + kv.values] == pointers
    assert kv.slot.tolist() == [7 + 24]  # 3 rows decoded, each token fed back
    # the mask covers the prompt's tokens and every written slot, nothing after them
    assert state.attention_mask.sum(dim=1).tolist() == [len(p) + 24 for p in PROMPTS] * 2
    engine.select(state, [1, 1])
    assert all(b.shape[0] == 4 for b in kv.keys + kv.values) and state.attention_mask.shape == (4, capacity)
    pointers = [b.data_ptr() for b in kv.keys + kv.values]
    engine.finish(state)
    assert [b.data_ptr() for b in kv.keys + kv.values] == pointers


def test_static_is_off_by_default_on_the_cpu(model):
    state = StepwiseGenerator(model, GREEDY).start(PROMPTS[:1], path_keys(1))
    assert not isinstance(state.cache, StaticKV) and state.attention_mask.shape == (2, 5)
