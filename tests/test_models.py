import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, JanusVQVAEConfig

from cotgen.errors import InputError
from cotgen.generate import PathKey, Sampling, StepwiseGenerator
from cotgen.models.ar import build_janus, drop_prompts, image_token_loss
from cotgen.models.janus import load_generator, pad_prompts, tokenizer_specials
from cotgen.models.tokenizer import build_world_tokenizer
from cotgen.models.vq import (
    build_vq,
    finalize_codebook,
    pixels_to_tensor,
    quantize,
    reconstruct,
    restart_dead_codes,
    tensor_to_pixels,
)  # fmt: skip
from cotgen.prompts import TAGS
from cotgen.world import render_array, sample_scene
from cotgen.world.records import all_records, counting


@pytest.fixture(scope="module")
def tokenizer():
    return build_world_tokenizer()


def tiny_vq(grid=4, image=16):
    torch.manual_seed(0)
    return build_vq(JanusVQVAEConfig(
        embed_dim=8, num_embeddings=32, latent_channels=32, base_channels=32, channel_multiplier=[1, 1, 2],
        num_res_blocks=1, num_patches=grid,
    ))  # fmt: skip


def test_world_tokenizer_covers_every_prompt(tokenizer, tmp_path):
    special = tokenizer_specials(tokenizer)
    for tag in TAGS:
        for record in all_records(tag):
            ids = tokenizer(record.prompt).input_ids
            assert ids[0] == special.bos and ids[-1] == special.boi
            assert tokenizer.unk_token_id not in ids, record.prompt
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    prompt = "a photo of an orange cross left of a triangle"
    assert reloaded(prompt).input_ids == tokenizer(prompt).input_ids


def test_trained_path_and_shipped_path_agree_after_finalising():
    vq = tiny_vq()
    pixels = pixels_to_tensor([render_array(sample_scene(counting("circle", 2), i, size=16)) for i in range(3)])
    finalize_codebook(vq)
    vq.eval()
    with torch.no_grad():
        q = quantize(vq, pixels)
        shipped = vq.encode(pixels).image_tokens.view(3, -1)
        assert torch.equal(q.tokens, shipped)
        assert torch.allclose(reconstruct(vq, q.quantized), vq.decode(shipped), atol=1e-5)


def test_vq_training_pieces_reduce_the_error_and_revive_codes():
    vq = tiny_vq()
    pixels = pixels_to_tensor([render_array(sample_scene(counting("square", 2), i, size=16)) for i in range(4)])
    optimizer = torch.optim.Adam(vq.parameters(), lr=2e-3)
    errors = []
    for _ in range(30):
        q = quantize(vq, pixels)
        loss = (reconstruct(vq, q.quantized) - pixels).abs().mean() + q.commitment
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        errors.append(loss.item())
    assert errors[-1] < 0.5 * errors[0]
    usage = torch.bincount(q.tokens.flatten(), minlength=32)
    before = vq.quantize.embedding.weight.clone()
    moved = restart_dead_codes(vq, usage, q.latents)
    assert moved == int((usage == 0).sum()) > 0
    assert not torch.equal(before[usage == 0], vq.quantize.embedding.weight[usage == 0])
    assert torch.equal(before[usage > 0], vq.quantize.embedding.weight[usage > 0])
    assert tensor_to_pixels(pixels).dtype == np.uint8


def test_prompt_dropout_keeps_bos_and_begin_of_image(tokenizer):
    special = tokenizer_specials(tokenizer)
    ids, mask = pad_prompts([tokenizer("a photo of a circle").input_ids, tokenizer("a photo of two crosses").input_ids], special.pad)
    dropped = drop_prompts(ids, special, rate=1.0, rng=np.random.default_rng(0))
    assert (dropped[mask.bool()] != special.pad).sum() == 4  # BOS and BOI of each prompt
    assert torch.equal(drop_prompts(ids, special, rate=0.0, rng=np.random.default_rng(0)), ids)


def test_teacher_forcing_and_the_engine_share_one_layout(tokenizer):
    """Memorise two images; greedy decoding through the engine must then reproduce them exactly."""
    torch.manual_seed(0)
    model = build_janus(tiny_vq(), tokenizer, image_size=16, hidden_size=64, layers=2, heads=4, intermediate_size=128)
    special = tokenizer_specials(tokenizer)
    prompts = [tokenizer("a photo of a circle").input_ids, tokenizer("a photo of three red triangles").input_ids]
    targets = torch.randint(0, 32, (2, 16))
    ids, mask = pad_prompts(prompts, special.pad)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        loss = image_token_loss(model, ids, mask, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    engine = StepwiseGenerator(model.eval(), Sampling(guidance=1.0, temperature=0))
    tokens, _ = engine.finish(engine.start(prompts, [PathKey(0, "a", 0), PathKey(0, "b", 0)]))
    assert torch.equal(tokens, targets)


def test_loading_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(InputError, match="not a model folder"):
        load_generator(tmp_path)


def test_a_bf16_checkpoint_loads_and_generates_in_bf16(tokenizer, tmp_path):
    """Real Janus checkpoints ship in bf16: loading must keep that (a 7B in float32 would not fit a
    24 GB card) and the engine must run in it."""
    torch.manual_seed(0)
    model = build_janus(tiny_vq(), tokenizer, image_size=16, hidden_size=64, layers=2, heads=4, intermediate_size=128)
    model.to(torch.bfloat16).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_generator(tmp_path)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    engine = StepwiseGenerator(loaded, Sampling(guidance=3.0))
    tokens, images = engine.finish(engine.start([loaded_tokenizer("a photo of a circle").input_ids], [PathKey(0, "a", 0)]))
    assert tokens.shape == (1, 16) and images[0].size == (16, 16)
