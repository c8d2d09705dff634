"""Rendered training scenes for both stages: records of the training split (or prompt-free random
scenes) and, for corrective prompts, the exact evaluator's reasons against a broken render of each."""

from __future__ import annotations

import multiprocessing

import numpy as np

from cotgen.evaluate.exact import evaluate_image
from cotgen.world.perturb import broken_image
from cotgen.world.records import sample_training_record
from cotgen.world.render import render_array
from cotgen.world.sampler import sample_random_scene, sample_scene

SCENES_PER_CHUNK = 500


def _render_chunk(task: tuple[int, int, int, float, bool]) -> list[tuple]:
    seed, count, size, random_rate, feedback = task
    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(count):
        if rng.random() < random_rate:
            scenes.append((None, render_array(sample_random_scene(rng, size)), None))
            continue
        record = sample_training_record(rng)
        image, reasons = render_array(sample_scene(record, rng, size)), None
        if feedback:
            verdict = evaluate_image(broken_image(record, rng), record)
            reasons = None if verdict.correct else "; ".join(verdict.reasons)
        scenes.append((record, image, reasons))
    return scenes


def training_images(
    n: int, rng: np.random.Generator, size: int, random_rate: float = 0.0, feedback: bool = False, workers: int = 1,
    chunk: int = SCENES_PER_CHUNK,
):  # fmt: skip
    """n rendered training scenes: their records (None for prompt-free random scenes), images and, with
    `feedback`, the exact evaluator's reasons against a broken render of each record (None where that
    render is still right). Chunks of `chunk` scenes have their own seeds, so `workers` processes draw
    the same scenes as one."""
    starts = range(0, n, chunk)
    seeds = rng.integers(2**63, size=len(starts))
    tasks = [(int(seed), min(chunk, n - start), size, random_rate, feedback) for start, seed in zip(starts, seeds)]
    if workers > 1 and len(tasks) > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:  # the workers touch no torch
            chunks = pool.map(_render_chunk, tasks)
    else:
        chunks = [_render_chunk(task) for task in tasks]
    records, images, reasons = zip(*(scene for part in chunks for scene in part))
    return list(records), list(images), list(reasons)
