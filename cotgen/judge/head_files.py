"""A judge's heads beside its weights: small safetensors files with their settings as metadata."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from cotgen.errors import InputError


def write_head(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    save_file({k: t.detach().contiguous() for k, t in tensors.items()}, str(path), metadata=meta)


def read_head(
    path: Path, what: str, tensors: tuple[str, ...], meta: tuple[str, ...]
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A head file's named tensors and metadata; a clear error naming `what` the file should hold."""
    try:
        with safe_open(str(path), framework="pt") as f:
            found = f.metadata() or {}
            return {k: f.get_tensor(k) for k in tensors}, {k: found[k] for k in meta}
    except (KeyError, OSError, SafetensorError) as err:
        raise InputError(f"{path}: not {what} ({', '.join(tensors)}; metadata {', '.join(meta)}): {err}") from err


def read_names(path: Path, raw: str) -> list[str]:
    """A JSON list of names from a head's metadata (its classes)."""
    try:
        names = json.loads(raw)
    except ValueError as err:
        raise InputError(f"{path}: metadata classes: {err}") from err
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise InputError(f"{path}: metadata classes must be a JSON list of names")
    return names
