"""Presets for real checkpoints: tiny random models saved in the real layout under $COTGEN_MODELS."""

import json
import os
import subprocess
import sys

import pytest
import torch
from tiny_judges import CORPUS, byte_level_tokenizer, tiny_qwen2_5_vl
from tiny_models import janus_pro_tokenizer, path_keys, tiny_janus
from transformers import CONFIG_MAPPING

from cotgen.cli import main
from cotgen.errors import InputError
from cotgen.generate import Sampling, StepwiseGenerator
from cotgen.judge import SUPPORTED, load_judge, save_judge
from cotgen.models.janus import generation_prompt_ids, load_generator
from cotgen.models.presets import MODELS_ENV, PRESETS

PROMPT = "a photo of two red circles"


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    """janus-pro-1b (Janus-Pro's special tokens, prompt format, 16 px per token and 16384 codes, on an
    8×8 grid rather than 24×24 to stay quick) and qwen2.5-vl-7b, both tiny and random, saved as
    `save_pretrained` folders where the presets look for them."""
    root = tmp_path_factory.mktemp("models")
    model = tiny_janus(grid=8, patch_pixels=16, codebook=16384, vq_channels=(1, 1, 1, 1, 2), hidden_size=32, layers=1, heads=2)
    model.save_pretrained(root / "janus-pro-1b")
    janus_pro_tokenizer().save_pretrained(root / "janus-pro-1b")
    torch.manual_seed(0)
    save_judge(tiny_qwen2_5_vl(byte_level_tokenizer(CORPUS, vocab_size=400)), root / "qwen2.5-vl-7b")
    return root


def test_generator_preset_loads_from_the_models_folder_and_decodes(models_root, monkeypatch):
    monkeypatch.setenv(MODELS_ENV, str(models_root))
    model, tokenizer = load_generator("janus-pro-1b")
    ids = generation_prompt_ids(tokenizer, PROMPT)
    assert tokenizer.convert_ids_to_tokens(ids[:2]) == ["<｜begin▁of▁sentence｜>", "<|User|>"]
    assert tokenizer.convert_ids_to_tokens(ids[-1]) == "<begin_of_image>"
    engine = StepwiseGenerator(model, Sampling(steps=4))
    tokens, images = engine.finish(engine.start([ids, ids], path_keys(2)))
    assert tokens.shape == (2, 64) and images[0].size == (128, 128)


def test_judge_preset_loads_and_scores(models_root, monkeypatch):
    monkeypatch.setenv(MODELS_ENV, str(models_root))
    judge = load_judge("qwen2.5-vl-7b")
    assert judge.model.config.model_type == "qwen2_5_vl"
    from PIL import Image

    p = judge.p_yes([Image.new("RGB", (56, 56), "red")], ["Is the circle red?"])
    assert p.shape == (1,) and 0 < p.item() < 1


def test_missing_weights_say_what_to_download_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    with pytest.raises(InputError) as err:
        load_generator("janus-pro-7b")
    message = str(err.value)
    assert f"hf download deepseek-community/Janus-Pro-7B --local-dir {tmp_path / 'janus-pro-7b'}" in message
    assert MODELS_ENV in message and "\n" not in message
    with pytest.raises(InputError, match="ZiyuG/Image-Generation-CoT --include 'parm/\\*'.*convert_llava_onevision"):
        load_judge("parm")
    with pytest.raises(InputError, match=r"janus-pro-1b is a generator preset, not a judge \(the judge presets: qwen2.5-vl-7b, parm\)"):
        load_judge("janus-pro-1b")


def test_an_unreachable_hub_id_is_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "cotgen", "generate", PROMPT, "--generator", "nobody/no-such-model", "--out", str(tmp_path)],
        check=False, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("cotgen: error: nobody/no-such-model: could not download from the Hugging Face Hub")
    assert len(result.stderr.strip().splitlines()) == 1


def test_deepseek_original_format_is_refused_with_the_converted_repo(tmp_path, monkeypatch):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    (tmp_path / "janus-pro-1b").mkdir()
    (tmp_path / "janus-pro-1b" / "config.json").write_text(json.dumps({"model_type": "multi_modality"}))
    with pytest.raises(InputError, match="model_type 'multi_modality', not 'janus'.*deepseek-community/Janus-Pro-1B"):
        load_generator("janus-pro-1b")


def test_presets_name_model_types_their_loaders_read():
    for name, preset in PRESETS.items():
        assert preset.model_type in CONFIG_MAPPING, name  # transformers' own format
        readable = {"janus"} if preset.role == "generator" else set(SUPPORTED)
        assert preset.model_type in readable, name


def test_cli_generates_with_preset_generator_and_judge(models_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(MODELS_ENV, str(models_root))
    out = tmp_path / "parm"
    argv = ["generate", PROMPT, "--generator", "janus-pro-1b", "--judge", "qwen2.5-vl-7b", "--strategy", "parm"]
    assert main([*argv, "--n", "2", "--steps", "2", "--out", str(out)]) == 0
    assert json.loads((out / "trace.json").read_text())["strategy"] == "parm"
    assert (out / "selected.png").is_file()
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "empty"))
    capsys.readouterr()
    assert main([*argv, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("cotgen: error: qwen2.5-vl-7b: no weights in") and "hf download Qwen/Qwen2.5-VL-7B-Instruct" in error
