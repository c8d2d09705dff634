"""GenEval's image folder layout, read and written.

    DIR/00000/metadata.jsonl     the prompt's record (one JSON object)
    DIR/00000/samples/0000.png   its images (any `<digits>.png`; GenEval's own script writes 00000.png)
    DIR/00000/grid.png           optional, ignored

Prompt folders are the subfolders whose names are all digits, as in GenEval's evaluator.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from cotgen.errors import InputError
from cotgen.prompts import Record, load_records, write_text_atomic

_SAMPLE = re.compile(r"\d+\.png")


@dataclass(frozen=True)
class PromptFolder:
    path: Path
    record: Record
    samples: tuple[Path, ...]


def write_prompt_folder(root: str | Path, index: int, record: Record, images: Sequence[Image.Image]) -> Path:
    folder = Path(root) / f"{index:05d}"
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        image.save(folder / "samples" / f"{i:04d}.png")
    # Metadata last: a folder with metadata is complete.
    write_text_atomic(folder / "metadata.jsonl", record.to_line() + "\n")
    return folder


def _read_folder(folder: Path) -> PromptFolder:
    metadata = folder / "metadata.jsonl"
    if not metadata.is_file():
        raise InputError(f"{metadata}: missing (every prompt folder needs its metadata.jsonl)")
    records = load_records(metadata)
    if len(records) != 1:
        raise InputError(f"{metadata}: expected one record, found {len(records)}")
    samples_dir = folder / "samples"
    samples = sorted(p for p in samples_dir.glob("*.png") if _SAMPLE.fullmatch(p.name)) if samples_dir.is_dir() else []
    if not samples:
        raise InputError(f"{samples_dir}: no images (expected samples/0000.png, …)")
    return PromptFolder(folder, records[0], tuple(samples))


def read_prompt_folders(root: str | Path) -> list[PromptFolder]:
    """Every prompt folder under `root`, validated before any image is scored."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not folders:
        raise InputError(f"{root}: no GenEval prompt folders (00000/, 00001/, …) found")
    return [_read_folder(f) for f in folders]


def has_prompt_folders(root: str | Path) -> bool:
    root = Path(root)
    return root.is_dir() and any(p.is_dir() and p.name.isdigit() for p in root.iterdir())


def load_image(path: str | Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path}: cannot read image ({err.__class__.__name__}: {err})") from None


def png(image: Image.Image) -> bytes:
    """An image as PNG bytes (rows and wire messages carry images so)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def from_png(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")
