"""jobs/train_generator.py end to end in a tiny config (both stages, the card, continuations), and its
pieces in cotgen.train.generator."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cotgen.config import load_config
from cotgen.errors import InputError
from cotgen.models.janus import image_grid, load_generator
from cotgen.models.tokenizer import SPECIALS, world_words
from cotgen.train.generator.config import TrainGeneratorConfig, resolve_precision
from cotgen.train.generator.dataset import CorrectivePrompts
from cotgen.train.generator.scenes import training_images

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "threads=1", "final_per_tag=1", "vq.grid=8", "vq.channel_multiplier=[1,1,2,2]", "vq.minutes=0.01",
    "vq.eval_every=3", "vq.eval_scenes=3", "vq.codebook=64", "ar.minutes=0.01", "ar.hidden_size=32", "ar.layers=1",
    "ar.heads=2", "ar.intermediate_size=64", "ar.dataset_scenes=24", "ar.eval_every=1000",
]  # fmt: skip


def run_job(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / "train_generator.py"), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_train_generator_job_end_to_end_and_vq_continuation(tmp_path):
    done = run_job(f"out={tmp_path / 'a'}", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    model, _ = load_generator(tmp_path / "a" / "generator")
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


def test_training_scenes_carry_the_evaluators_reasons_and_do_not_depend_on_workers():
    n = 3 * 16 + 8  # four chunks
    records, images, reasons = training_images(n, np.random.default_rng(0), 64, feedback=True, chunk=16)
    again = training_images(n, np.random.default_rng(0), 64, feedback=True, workers=2, chunk=16)
    assert records == again[0] and reasons == again[2] and all(np.array_equal(a, b) for a, b in zip(images, again[1]))
    broken = [why for why in reasons if why]
    assert len(broken) >= n // 2  # a broken render that is still right has no reasons
    assert all(("expected" in why or "is not" in why) for why in broken)

    prompts = [[i] for i in range(n)]
    corrective = [[i, -1] if why else None for i, why in enumerate(reasons)]
    rng = np.random.default_rng(0)
    never = CorrectivePrompts(prompts, corrective, share=0.0)
    assert [never.draw(i, rng) for i in range(n)] == prompts
    always = CorrectivePrompts(prompts, corrective, share=0.99)
    drawn = [always.draw(i, rng) for i in range(n)]
    assert sum(d == c for d, c in zip(drawn, corrective)) >= 0.9 * len(broken)
    assert all(d == p for d, p, c in zip(drawn, prompts, corrective) if c is None)


@pytest.mark.parametrize("override, message", [
    ("device=tpu", "device: expected cpu or cuda[:N], got 'tpu'"),
    ("ar.feedback_share=1.0", "ar.feedback_share: must be within [0, 1), got 1.0"),
    ("ar.workers=0", "ar.workers: must be at least 1, got 0"),
    ("ar.precision=fp16", "ar.precision: 'fp16' is not one of fp32, bf16, auto"),
    ("ar.guidance=0.5", "ar.guidance: must be at least 1.0, got 0.5"),
])  # fmt: skip
def test_train_generator_rejects_bad_corrector_and_device_settings(override, message):
    with pytest.raises(InputError, match=re.escape(message)):
        load_config(TrainGeneratorConfig, None, [override])


def test_auto_precision_takes_bf16_only_where_it_is_fast():
    assert resolve_precision("auto", "cuda:1") == "bf16"
    assert resolve_precision("fp32", "cuda") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    assert resolve_precision("auto", "cpu") == ("bf16" if "avx512_bf16" in flags or "amx_bf16" in flags else "fp32")
