"""Write shapes-world images for a list of records in GenEval's folder layout."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from cotgen.layout import write_prompt_folder
from cotgen.prompts import Record
from cotgen.world.render import render
from cotgen.world.sampler import sample_scene

# How one image is made for a record: (record, rng, canvas size) -> image.
Painter = Callable[[Record, np.random.Generator, int], Image.Image]


def paint_oracle(record: Record, rng: np.random.Generator, size: int) -> Image.Image:
    """A clean render of a scene that satisfies the record."""
    return render(sample_scene(record, rng, size))


def write_scene_folders(
    out: str | Path,
    records: Sequence[Record],
    seed: int,
    samples: int = 1,
    size: int = 64,
    paint: Painter = paint_oracle,
    progress: bool = False,
) -> list[Path]:
    """Folder i holds `samples` images of records[i]; image j is seeded by (seed, i, j)."""
    folders = []
    bar = tqdm(records, desc="rendering", unit="prompt", disable=None if progress else True)  # None: terminal only
    for i, record in enumerate(bar):
        images = [paint(record, np.random.default_rng([seed, i, j]), size) for j in range(samples)]
        folders.append(write_prompt_folder(out, i, record, images))
    return folders
