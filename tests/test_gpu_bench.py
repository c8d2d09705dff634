"""bench/gpu_engine.py: its tiny CPU mode runs every method, and the floor follows Janus-Pro-1B's shapes."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

PATH = Path(__file__).resolve().parents[1] / "bench" / "gpu_engine.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_engine", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_tiny_mode_times_the_eager_loop_and_the_engine_on_the_same_tokens(bench, tmp_path):
    out = tmp_path / "bench.json"
    result = bench.main(["--tiny", "--batches", "3", "--repeats", "1", "--temperature", "0", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    methods = {t["method"] for t in result["timings"]}
    assert methods == {"eager loop (Janus's script)", "cotgen engine", "cotgen engine + previews"}
    assert all(t["batch"] == 3 and t["images_per_s"] > 0 for t in result["timings"])
    assert result["greedy_agree"] == {3: True}  # greedy: the reference loop and the engine decode the same image
    assert set(result["floors"]) >= {"H200", "H100"}


def test_floor_follows_janus_pro_1b_without_weights(bench, capsys):
    model = bench.build(bench.janus_pro_1b_config(), "meta", torch.bfloat16)
    assert model.config.vision_config.num_image_tokens == 576 and model.config.vq_config.num_embeddings == 16384
    # 24 layers of 2048-wide attention and a 5632 MLP, plus the 16384-way head: ~1.28 B bf16 weights a step
    assert 2.5e9 < bench.step_weight_bytes(model) < 2.6e9
    h200 = {b: bench.floor_images_per_s(model, b, bench.PROMPT_TOKENS, 4.8e12) for b in (16, 64)}
    assert 25 < h200[16] < h200[64] < 60  # batching amortises the weights; the KV cache grows with the batch
    if not torch.cuda.is_available():
        result = bench.main([])
        assert result["timings"] == [] and "not measured" in capsys.readouterr().out
        assert result["floors"]["H200"][64] == pytest.approx(h200[64])
