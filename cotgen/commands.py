"""What `cotgen generate`, `cotgen evaluate --generate` and the demo do, kept out of the argument parsing."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from cotgen.evaluate.folder import evaluate_folder
from cotgen.evaluate.summary import Summary
from cotgen.generate import PathKey, StepwiseGenerator, prompt_ids
from cotgen.generate.pipeline import generate_images
from cotgen.generate.strips import step_strip
from cotgen.layout import write_prompt_folder
from cotgen.prompts import Record


def generate_with_strips(engine: StepwiseGenerator, tokenizer, prompt: str, n: int, out: Path, seed: int) -> list[Path]:
    """n images of one prompt, each with a strip of its partial image after every step."""
    ids = prompt_ids(tokenizer, prompt)
    state = engine.start([ids] * n, [PathKey(seed, prompt, i) for i in range(n)])
    frames = [engine.preview(state)]
    for _ in tqdm(engine.step_rows(), desc="steps", unit="step", disable=None):
        engine.step(state)
        frames.append(engine.preview(state))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(n):
        frames[-1][i].save(out / f"{i:04d}.png")
        step_strip([f[i] for f in frames]).save(out / f"{i:04d}_steps.png")
        written.append(out / f"{i:04d}.png")
    return written


def generate_and_evaluate(
    engine: StepwiseGenerator, tokenizer, records: list[Record], samples: int, out: Path, seed: int, batch_size: int = 64
) -> tuple[list[dict], Summary]:
    """Generate `samples` images per record into GenEval's layout under `out`, then score the folder:
    one result row per image, and the summary."""
    for record in records:
        prompt_ids(tokenizer, record.prompt)  # fail before any work
    pending: dict[int, list] = {}
    for i, j, image in generate_images(engine, tokenizer, records, samples, seed, batch_size, progress=True):
        pending.setdefault(i, []).append(image)
        if len(pending[i]) == samples:
            write_prompt_folder(out, i, records[i], pending.pop(i))
    return evaluate_folder(out, progress=True)
