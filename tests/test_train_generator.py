"""jobs/train_generator.py end to end in a tiny config: both stages, the card, a VQ continuation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from cotgen.models.janus import image_grid, load_generator
from cotgen.models.tokenizer import SPECIALS, build_world_tokenizer, world_words
from cotgen.world.records import evaluation_records

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "threads=1", "final_per_tag=1", "vq.grid=8", "vq.channel_multiplier=[1,1,2,2]", "vq.minutes=0.01",
    "vq.eval_every=3", "vq.eval_scenes=3", "vq.codebook=64", "ar.minutes=0.01", "ar.hidden_size=32", "ar.layers=1",
    "ar.heads=2", "ar.intermediate_size=64", "ar.dataset_scenes=24", "ar.eval_every=1000",
]  # fmt: skip


def run_job(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / "train_generator.py"), *args], capture_output=True, text=True, timeout=300
    )


def test_train_generator_job_end_to_end_and_vq_continuation(tmp_path):
    done = run_job(f"out={tmp_path / 'a'}", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    model, tokenizer = load_generator(tmp_path / "a" / "generator")
    assert image_grid(model) == 8 and model.config.vq_config.num_embeddings == 64
    card = (tmp_path / "a" / "generator" / "README.md").read_text()
    assert "8×8 image tokens" in card and "Share of the 6 held-out scenes" in card
    first = json.loads((tmp_path / "a" / "vq" / "stage.json").read_text())

    again = run_job(f"out={tmp_path / 'b'}", f"vq.init_from={tmp_path / 'a' / 'vq'}", *TINY)
    assert again.returncode == 0, again.stderr[-2000:]
    second = json.loads((tmp_path / "b" / "vq" / "stage.json").read_text())
    assert second["steps"] > first["steps"] and second["minutes"] >= first["minutes"]

    mismatched = run_job(f"out={tmp_path / 'c'}", f"vq.init_from={tmp_path / 'a' / 'vq'}", *TINY, "vq.codebook=32")
    assert mismatched.returncode == 2 and "has grid 8 and 64 codes, the config says 8 and 32" in mismatched.stderr


def test_train_generator_job_rejects_a_bad_value(tmp_path):
    done = run_job(f"out={tmp_path}", "vq.grid=nine")
    assert done.returncode == 2 and "vq.grid: expected int" in done.stderr


def test_a_continuation_learns_corrective_prompts_and_grows_an_older_vocabulary(tmp_path):
    done = run_job(f"out={tmp_path / 'a'}", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    model, tokenizer = load_generator(tmp_path / "a" / "generator")
    words = len(SPECIALS) + len(world_words())
    model.resize_token_embeddings(words)  # a checkpoint from before the feedback words
    old = tmp_path / "old"
    model.save_pretrained(old)
    tokenizer.save_pretrained(old)
    missing = run_job(f"out={tmp_path / 'm'}", *TINY, f"ar.init_from={old}")
    assert missing.returncode == 2 and "has no stage.json" in missing.stderr
    shutil.copy(tmp_path / "a" / "generator" / "stage.json", old)
    shutil.copytree(tmp_path / "a" / "vq", tmp_path / "b" / "vq")

    again = run_job(f"out={tmp_path / 'b'}", *TINY, f"ar.init_from={old}", "ar.feedback_share=0.5", "ar.precision=bf16")
    assert again.returncode == 0, again.stderr[-2000:]
    grown, tokenizer = load_generator(tmp_path / "b" / "generator")
    assert grown.get_input_embeddings().num_embeddings == len(tokenizer) > words
    assert json.loads((tmp_path / "b" / "generator" / "stage.json").read_text())["rounds"] == 2


def test_corrective_prompts_carry_the_evaluators_reasons():
    sys.path.insert(0, str(REPO / "jobs"))
    from train_generator import CorrectivePrompts

    tokenizer = build_world_tokenizer()
    prompts = [tokenizer(r.prompt).input_ids for r in evaluation_records()[::50]]
    rng = np.random.default_rng(0)
    never = CorrectivePrompts(tokenizer, prompts, share=0.0)
    assert [never.draw(i, rng) for i in range(len(prompts))] == prompts
    always = CorrectivePrompts(tokenizer, prompts, share=0.99)
    drawn = [tokenizer.decode(always.draw(i, rng), skip_special_tokens=True) for i in range(len(prompts))]
    corrected = [d for d in drawn if "feedback :" in d]
    assert len(corrected) >= len(prompts) // 2  # a broken render that is still right keeps the bare prompt
    assert all(("expected" in d or "is not" in d) for d in corrected)
    assert all(d.startswith(tokenizer.decode(p, skip_special_tokens=True)) for d, p in zip(drawn, prompts))


def test_train_generator_rejects_bad_corrector_and_device_settings(tmp_path):
    device = run_job(f"out={tmp_path}", "device=tpu")
    assert device.returncode == 2 and "device: expected cpu or cuda[:N], got 'tpu'" in device.stderr
    share = run_job(f"out={tmp_path}", "ar.feedback_share=1.0")
    assert share.returncode == 2 and "ar.feedback_share: must be within [0, 1), got 1.0" in share.stderr
    precision = run_job(f"out={tmp_path}", "ar.precision=fp16")
    assert precision.returncode == 2 and "ar.precision: 'fp16' is not one of fp32, bf16" in precision.stderr
