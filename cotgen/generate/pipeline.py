"""Prompts in, images out: tokenise GenEval records, run the engine in batches, score the images."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from PIL import Image
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast

from cotgen.evaluate.exact import evaluate_image
from cotgen.generate.engine import PathKey, StepwiseGenerator
from cotgen.models.janus import generation_prompt_ids
from cotgen.prompts import Record


def generate_images(
    engine: StepwiseGenerator,
    tokenizer: PreTrainedTokenizerFast,
    records: Sequence[Record],
    samples: int,
    seed: int,
    batch_size: int = 64,
    progress: bool = False,
) -> Iterator[tuple[int, int, Image.Image]]:
    """Yield (record index, sample index, image) for `samples` images of every record.

    Path keys use the record's position as its prompt id, so a rerun with the same seed repeats
    every image."""
    yield from generate_prompts(engine, tokenizer, [r.prompt for r in records], range(samples), seed, batch_size, progress)


def generate_prompts(
    engine: StepwiseGenerator,
    tokenizer: PreTrainedTokenizerFast,
    prompts: Sequence[str],
    samples: Sequence[int],
    seed: int,
    batch_size: int = 64,
    progress: bool = False,
) -> Iterator[tuple[int, int, Image.Image]]:
    """Yield (prompt index, sample index, image) for the given sample indices of every prompt; the
    path key is (seed, prompt index, sample index), so two lists of prompts share their random draws
    position by position (a prompt and its corrective prompt, say)."""
    paths = [(i, j) for i in range(len(prompts)) for j in samples]
    bar = tqdm(total=len(paths), desc="generating", unit="img", disable=None if progress else True)
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        ids = [generation_prompt_ids(tokenizer, prompts[i]) for i, _ in chunk]
        keys = [PathKey(seed, str(i), j) for i, j in chunk]
        _, images = engine.finish(engine.start(ids, keys))
        for (i, j), image in zip(chunk, images):
            yield i, j, image
        bar.update(len(chunk))
    bar.close()


@torch.no_grad()
def generate_verdicts(
    engine: StepwiseGenerator,
    tokenizer: PreTrainedTokenizerFast,
    records: Sequence[Record],
    samples: int = 1,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> list[tuple[str, bool]]:
    """(tag, exact verdict) of every image, in `generate_images`' order: the same keys for the same
    records and seed, so two policies' verdicts pair up image by image."""
    return [(records[i].tag, evaluate_image(image, records[i]).correct)
            for i, _, image in generate_images(engine, tokenizer, records, samples, seed, batch_size, progress)]  # fmt: skip
