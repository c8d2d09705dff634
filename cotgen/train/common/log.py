"""A run's log: one line per record on stdout and one JSON object per record in <folder>/log.jsonl."""

from __future__ import annotations

import json
from pathlib import Path


def log(folder: Path, /, **record) -> None:
    """Print `record` as key=value pairs and append it to <folder>/log.jsonl."""
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()), flush=True)
    with open(folder / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
