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
    assert methods == {"eager loop (Janus's script)", "cotgen engine", "cotgen engine + previews", "cotgen engine, static"}
    assert all(t["batch"] == 3 and t["images_per_s"] > 0 for t in result["timings"])
    assert result["greedy_agree"] == {3: True}  # greedy: the reference loop and both engine paths decode the same image
    assert set(result["floors"]) >= {"H200", "H100"}


def test_floor_follows_janus_pro_1b_without_weights(bench, capsys):
    model = bench.build(bench.janus_pro_1b_config(), "meta", torch.bfloat16)
    assert model.config.vision_config.num_image_tokens == 576 and model.config.vq_config.num_embeddings == 16384
    # A step reads, in bf16: 24 Llama layers 2048 wide with a 5632 MLP, the final norm, the generation
    # head (2048 → 2048 → 16384 codes) and the aligner (8 → 2048 → 2048), biases included.
    hidden, mlp, codes = 2048, 5632, 16384
    layers = 24 * (4 * hidden * hidden + 3 * hidden * mlp + 2 * hidden)
    head = hidden * hidden + hidden + hidden * codes + codes
    aligner = 8 * hidden + hidden + hidden * hidden + hidden
    weights = 2 * (layers + hidden + head + aligner)
    assert bench.step_weight_bytes(model) == weights
    # 576 steps read the weights and each row's cache so far: 2 rows an image (CFG), keys and values
    # of 24 layers × 2048 in bf16 per position, after the prompt's.
    positions = sum(bench.PROMPT_TOKENS + t for t in range(576))
    h200 = {}
    for batch in (16, 64):
        moved = 576 * weights + 2 * batch * positions * (2 * 24 * hidden * 2)
        h200[batch] = bench.floor_images_per_s(model, batch, bench.PROMPT_TOKENS, 4.8e12)
        assert h200[batch] == pytest.approx(batch * 4.8e12 / moved)
    assert h200[16] < h200[64]  # batching amortises the weights
    if not torch.cuda.is_available():
        result = bench.main([])
        assert result["timings"] == [] and "not measured" in capsys.readouterr().out
        assert result["floors"]["H200"][64] == pytest.approx(h200[64])


@pytest.fixture(scope="module")
def judge_bench():
    spec = importlib.util.spec_from_file_location("gpu_judge", PATH.with_name("gpu_judge.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_judge_bench_tiny_mode_times_both_questions(judge_bench, tmp_path):
    out = tmp_path / "judge.json"
    result = judge_bench.main(["--tiny", "--batches", "2", "--repeats", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert [(t["task"], t["batch"]) for t in result["timings"]] == [("orm", 2), ("potential", 2)]
    assert all(t["images_per_s"] > 0 and t["forward_images_per_s"] > 0 for t in result["timings"])
    orm, potential = result["timings"]
    assert potential["tokens_per_chat"] > orm["tokens_per_chat"]  # clarity's exchange comes first


def test_judge_bench_builds_qwen2_vl_7b_shapes_without_weights(judge_bench):
    from PIL import Image

    judge = judge_bench.build(judge_bench.qwen2_vl_7b(), "meta", torch.bfloat16)
    # Qwen2-VL-7B's 8.29B parameters less its 152,064-token embedding table and head (2 × 545M):
    # the bench's tokenizer is the embedded judge's.
    assert sum(p.numel() for p in judge.model.parameters()) == pytest.approx(7.206e9, rel=1e-3)
    assert judge.model.dtype == torch.bfloat16
    grid = judge.processor.image_processor(images=[Image.new("RGB", (judge_bench.IMAGE_SIDE,) * 2)], return_tensors="pt")["image_grid_thw"]
    assert grid.tolist() == [[1, 28, 28]]  # 784 patches of 14 px, 196 visual tokens after the 2×2 merge
