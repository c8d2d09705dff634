import numpy as np
import pytest
import torch
from tiny_models import janus_pro_tokenizer, path_keys, tiny_janus

from cotgen.generate import Sampling, StepwiseGenerator
from cotgen.models.janus import configure_generation, generation_prompt_ids, tokenizer_specials

PROMPTS = [[1, 10, 11, 12, 3], [1, 20, 21, 3], [1, 30, 31, 32, 33, 34, 3], [1, 40, 3]]


@pytest.fixture(scope="module")
def model():
    return tiny_janus()


def test_greedy_engine_matches_transformers_generate(model):
    prompts = [PROMPTS[0], [1, 20, 21, 22, 3]]  # equal lengths: generate() does not shift positions for padding
    reference = model.generate(
        torch.tensor(prompts), attention_mask=torch.ones(2, 5, dtype=torch.long),
        generation_mode="image", do_sample=False, guidance_scale=2.0,
    )
    engine = StepwiseGenerator(model, Sampling(guidance=2.0, temperature=0))
    tokens, images = engine.finish(engine.start(prompts, path_keys(2)))
    assert torch.equal(tokens, reference)
    decoded = ((model.decode_image_tokens(reference).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    assert np.array_equal(np.stack([np.asarray(i) for i in images]), decoded)


def test_seeding_is_independent_of_batching(model):
    engine = StepwiseGenerator(model, Sampling(guidance=3.0, temperature=1.0, top_k=0))
    prompts = [PROMPTS[i % 4] for i in range(8)]
    together, _ = engine.finish(engine.start(prompts, path_keys(8)))
    alone = torch.cat([engine.finish(engine.start([p], [k]))[0] for p, k in zip(prompts, path_keys(8))])
    assert torch.equal(together, alone)
    again, _ = engine.finish(engine.start(prompts, path_keys(8)))
    assert torch.equal(together, again)
    other, _ = engine.finish(engine.start(prompts, path_keys(8, prompt="q")))
    assert not torch.equal(together, other)


def test_steps_are_groups_of_rows(model):
    engine = StepwiseGenerator(model, Sampling(steps=3))
    assert engine.step_rows() == [3, 5, 8]  # 8 rows in 3 steps
    state = engine.start(PROMPTS[:2], path_keys(2))
    done = []
    while not engine.done(state):
        engine.step(state)
        done.append(engine.rows_done(state))
    assert done == [3, 5, 8]
    assert state.tokens_decoded.tolist() == [64, 64]


def test_preview_decodes_finished_rows_and_leaves_the_rest_blank(model):
    engine = StepwiseGenerator(model, Sampling(steps=4))
    state = engine.start(PROMPTS[:2], path_keys(2))
    blank = engine.preview(state)
    assert all((np.asarray(im) == 255).all() for im in blank)
    engine.step(state)  # 2 of 8 rows, 4 px each
    partial = np.asarray(engine.preview(state)[0])
    assert partial.shape == (32, 32, 3)
    assert (partial[8:] == 255).all() and not (partial[:8] == 255).all()
    _, images = engine.finish(state)
    assert np.array_equal(np.asarray(engine.preview(state)[1]), np.asarray(images[1]))


def test_pruning_stops_compute_and_keeps_survivors_unchanged(model):
    engine = StepwiseGenerator(model, Sampling(steps=4))
    reference, _ = engine.finish(engine.start(PROMPTS, path_keys(4)))
    state = engine.start(PROMPTS, path_keys(4))
    engine.step(state)  # 2 of 8 rows: 16 tokens a path
    assert all(layer.keys.shape[0] == 8 for layer in state.cache.layers)  # 4 paths, conditional and not
    engine.select(state, [3, 1])
    # the pruned paths' rows leave the KV cache: both halves of the 2 live paths are left
    assert all(layer.keys.shape[0] == layer.values.shape[0] == 4 for layer in state.cache.layers)
    assert state.cache.get_seq_length() > 0 and state.attention_mask.shape[0] == 4
    rows = []  # the batch of every forward pass from here on
    hook = model.model.generation_head.register_forward_hook(lambda module, args, out: rows.append(out.shape[0]))
    try:
        tokens, _ = engine.finish(state)
    finally:
        hook.remove()
    assert len(rows) == 48 - 1 and all(r == 4 for r in rows)  # one pass per remaining token (the last needs none)
    assert torch.equal(tokens, reference[[3, 1]])
    assert state.tokens_decoded.tolist() == [64, 64]  # the live paths' tokens only
    assert [k.prompt_id for k in state.keys] == ["p3", "p1"]


def test_branching_continues_from_the_shared_prefix(model):
    engine = StepwiseGenerator(model, Sampling(steps=4))
    state = engine.start(PROMPTS[:2], path_keys(2))
    engine.step(state)
    prefix = state.tokens[0].clone()
    engine.select(state, [0, 0, 0])
    tokens, _ = engine.finish(state)
    assert all(torch.equal(row[: len(prefix)], prefix) for row in tokens)
    assert len({tuple(row.tolist()) for row in tokens}) == 3  # the branches diverge
    assert len(set(state.keys)) == 3
    # the first copy keeps the original key, so it finishes as the unbranched path would
    reference, _ = engine.finish(engine.start(PROMPTS[:1], path_keys(1)))
    assert torch.equal(tokens[0], reference[0])


def test_top_k_one_is_greedy(model):
    greedy = StepwiseGenerator(model, Sampling(temperature=0))
    top1 = StepwiseGenerator(model, Sampling(temperature=1.0, top_k=1))
    assert torch.equal(greedy.finish(greedy.start(PROMPTS, path_keys(4)))[0], top1.finish(top1.start(PROMPTS, path_keys(4)))[0])


def test_janus_pro_layout_at_24x24_tokens():
    # Janus-Pro: 576 image tokens on a 24×24 grid, 16 px per token at 384 px; 16384 codes.
    model = tiny_janus(grid=24, patch_pixels=16, codebook=16384, vq_channels=(1, 1, 1, 1, 2), hidden_size=32, layers=1, heads=2)
    assert model.config.vision_config.num_image_tokens == 576
    assert model.config.vq_config.num_patches == 24
    tokenizer = janus_pro_tokenizer()
    ids = generation_prompt_ids(tokenizer, "a photo of two red circles")
    text = tokenizer.convert_ids_to_tokens(ids)
    assert text == ["<｜begin▁of▁sentence｜>", "<|User|>", ":", "a", "photo", "of", "two", "red", "circles", "<|Assistant|>", ":", "<begin_of_image>"]  # fmt: skip
    configure_generation(model, tokenizer_specials(tokenizer))
    engine = StepwiseGenerator(model, Sampling(steps=6))
    state = engine.start([ids], path_keys(1))
    engine.step(state)
    assert engine.rows_done(state) == 4
    assert np.asarray(engine.preview(state)[0]).shape == (384, 384, 3)
    tokens, images = engine.finish(state)
    assert tokens.shape == (1, 576) and images[0].size == (384, 384)


def test_bad_arguments_are_rejected(model):
    with pytest.raises(ValueError, match="guidance"):
        Sampling(guidance=0.5)
    engine = StepwiseGenerator(model)
    with pytest.raises(ValueError, match="begin-of-image"):
        engine.start([[1, 10, 11]], path_keys(1))
    state = engine.start(PROMPTS[:2], path_keys(2))
    with pytest.raises(IndexError):
        engine.select(state, [2])
