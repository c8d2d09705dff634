"""The shapes-world demo: what the exact evaluator says about three kinds of images.

- oracle: clean renders of scenes that satisfy each prompt (should score 1.0);
- vq-like: the same renders blurred, jittered, shifted and JPEG-compressed like a tokenizer would;
- prompt-blind: random scenes that ignore the prompt (the floor any generator must beat).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from cotgen.evaluate.folder import evaluate_folder
from cotgen.evaluate.summary import Summary
from cotgen.prompts import TAGS, Record
from cotgen.world.degrade import vq_like
from cotgen.world.folders import Painter, paint_oracle, write_scene_folders
from cotgen.world.records import evaluation_records
from cotgen.world.render import render
from cotgen.world.sampler import sample_random_scene


def _paint_vq_like(record: Record, rng: np.random.Generator, size: int) -> Image.Image:
    return vq_like(paint_oracle(record, rng, size), rng)


def _paint_prompt_blind(record: Record, rng: np.random.Generator, size: int) -> Image.Image:
    return render(sample_random_scene(rng, size))


SOURCES: dict[str, Painter] = {
    "oracle": paint_oracle,
    "vq-like": _paint_vq_like,
    "prompt-blind": _paint_prompt_blind,
}


def demo_records(per_tag: int) -> list[Record]:
    """The first `per_tag` records of each tag of the held-out evaluation set."""
    records = evaluation_records()
    return [r for tag in TAGS for r in [r for r in records if r.tag == tag][:per_tag]]


def run_demo(out: str | Path, per_tag: int, samples: int, seed: int, progress: bool = False) -> dict[str, Summary]:
    records = demo_records(per_tag)
    summaries = {}
    for name, paint in SOURCES.items():
        folder = Path(out) / name
        shutil.rmtree(folder, ignore_errors=True)  # the demo's own output: stale folders would be scored
        write_scene_folders(folder, records, seed, samples, paint=paint, progress=progress)
        summaries[name] = evaluate_folder(folder, progress=progress)[1]
    return summaries
