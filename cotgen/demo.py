"""The demo on the embedded default: held-out prompts, four kinds of images, one table.

- oracle: clean renders of scenes that satisfy each prompt (should score 1.0);
- vq-like: the same renders blurred, jittered, shifted and JPEG-compressed like a tokenizer would;
- the generator (by default the embedded tiny Janus), sampled by the step-wise engine;
- prompt-blind: random scenes that ignore the prompt (the floor any generator must beat).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from cotgen.commands import generate_and_evaluate
from cotgen.evaluate.folder import evaluate_folder
from cotgen.evaluate.summary import Summary
from cotgen.generate.engine import StepwiseGenerator
from cotgen.prompts import Record
from cotgen.world.degrade import vq_like
from cotgen.world.folders import Painter, paint_oracle, write_scene_folders
from cotgen.world.records import evaluation_records, first_per_tag
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


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)  # the demo's own output: stale folders would be scored
    return folder


def run_demo(
    out: str | Path, per_tag: int, samples: int, seed: int, generator: StepwiseGenerator | None = None,
    tokenizer=None, progress: bool = False,
) -> dict[str, Summary]:  # fmt: skip
    records = first_per_tag(evaluation_records(), per_tag)
    summaries = {}
    for name, paint in SOURCES.items():
        folder = _fresh(Path(out) / name)
        write_scene_folders(folder, records, seed, samples, paint=paint, progress=progress)
        summaries[name] = evaluate_folder(folder, progress=progress)[1]
    if generator is not None:
        folder = _fresh(Path(out) / "generator")
        summaries["generator"] = generate_and_evaluate(generator, tokenizer, records, samples, folder, seed)[1]
    return summaries
