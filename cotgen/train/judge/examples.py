"""Labelled yes/no examples for training and evaluating the embedded judge, and their cached folders.

An *example* is one question about one image: (image, question, answer, tag), plus where it came
from. Every label is the exact evaluator's verdict on the image itself, never an assumption about
how the image was made: a perturbed scene that still satisfies its prompt is labelled "yes".

Images are stored once as PNG under a dataset folder and shared by the examples that ask about them;
`examples.jsonl` lists the examples. A folder is built once per fingerprint (the settings that made
it) and reused by a rerun (`cached`). The builders that fill the folders: `renders` (world renders),
`generated` (the generator's images), `rollouts` (prefixes labelled from rollouts); `dataset` puts
them together.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from cotgen.errors import InputError
from cotgen.evaluate.reader import Reading, read_scene

ANSWERS = ("yes", "no")
T = TypeVar("T")


@dataclass(frozen=True)
class Example:
    """One yes/no question about one image."""

    image: str
    """PNG path relative to the dataset folder."""
    question: str
    answer: str
    """"yes" or "no" (a census example, task "census": the census text)."""
    tag: str
    """GenEval tag of the record the question names."""
    prompt: str
    """The generation prompt the question names."""
    task: str = "orm"
    source: str = ""
    """What made the image and chose the question: render, broken, generated, heldout (+ "/swap")."""
    history: tuple[tuple[str, str], ...] = ()
    """Earlier (question, answer) turns of the chat, for follow-up questions."""
    reasons: tuple[str, ...] = ()
    """The evaluator's reasons (empty when the answer is "yes")."""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Example:
        data = dict(data)
        data["history"] = tuple(tuple(turn) for turn in data.get("history", ()))
        data["reasons"] = tuple(data.get("reasons", ()))
        return cls(**data)


class ExampleSet:
    """Examples and their images (loaded into memory) from one dataset folder."""

    def __init__(self, folder: Path, examples: list[Example]):
        self.folder = folder
        self.examples = examples
        self._images: dict[str, Image.Image] = {}
        self._readings: dict[str, Reading] = {}

    def __len__(self) -> int:
        return len(self.examples)

    def image(self, path: str) -> Image.Image:
        if path not in self._images:
            with Image.open(self.folder / path) as image:
                self._images[path] = image.convert("RGB")
        return self._images[path]

    def reading(self, path: str) -> Reading:
        """The exact evaluator's reading of an image (read once)."""
        if path not in self._readings:
            self._readings[path] = read_scene(self.image(path))
        return self._readings[path]

    def counts(self) -> dict[str, dict[str, int]]:
        """{source: {"yes": n, "no": n}}."""
        table: dict[str, dict[str, int]] = defaultdict(lambda: {"yes": 0, "no": 0})
        for e in self.examples:
            table[e.source][e.answer] += 1
        return dict(table)

    @classmethod
    def load(cls, folder: Path) -> ExampleSet:
        lines = (folder / "examples.jsonl").read_text().splitlines()
        return cls(folder, [Example.from_json(json.loads(line)) for line in lines if line])


def finished_settings(folder: Path) -> dict:
    """A finished set's settings (its done.json); a clear error where the set is missing or unfinished."""
    if not (folder / "done.json").is_file():
        raise InputError(f"{folder}: no finished set (jobs/train_judge.py builds it under <out>/data)")
    return json.loads((folder / "done.json").read_text())["settings"]


def finished_set(folder: Path, n: int) -> ExampleSet:
    """A finished example set holding at least n images; a clear error where it does not."""
    finished_settings(folder)
    examples = ExampleSet.load(folder)
    if len({e.image for e in examples.examples}) < n:
        raise InputError(f"{folder}: fewer than {n} images")
    return examples


def fingerprint(**settings) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def changes(before: dict, after: dict) -> str:
    """The settings that differ, as "name: before → after"."""
    names = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return ", ".join(f"{k}: {before.get(k, '(unset)')} → {after.get(k, '(unset)')}" for k in names) or "same values, older format"


def cached(folder: Path, settings: dict, build: Callable[[Path], Iterable[Example]]) -> ExampleSet:
    """The examples in `folder` if it was completed with the same settings, else `build(folder)`'s,
    written there (images are saved by `build`; examples.jsonl is written as they come). A folder
    completed with other settings is never overwritten: hours of images may be in it, and another
    run may share it."""
    done = folder / "done.json"
    key = fingerprint(**settings)
    if done.exists():
        made = json.loads(done.read_text())
        if made.get("fingerprint") == key:
            return ExampleSet.load(folder)
        changed = changes(made.get("settings", {}), json.loads(json.dumps(settings, default=str)))
        raise InputError(f"{folder}: holds a finished set made with other settings ({changed}); delete the folder to make it anew, or train into another `out`")  # fmt: skip
    (folder / "images").mkdir(parents=True, exist_ok=True)
    examples = []
    with open(folder / "examples.jsonl", "w") as f:
        for example in build(folder):
            examples.append(example)
            f.write(json.dumps(example.to_json()) + "\n")
    done.write_text(json.dumps({"fingerprint": key, "settings": settings, "examples": len(examples)}))
    return ExampleSet.load(folder)


def spread(items: Sequence[T], n: int) -> list[T]:
    """`n` of the items, evenly spread over them in order (all of them when n is 0 or more than there are)."""
    if not n or n >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round()]
