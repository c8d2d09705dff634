"""jobs/train_generator.py end to end in a tiny config: both stages, the card, a VQ continuation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cotgen.models.janus import image_grid, load_generator

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
