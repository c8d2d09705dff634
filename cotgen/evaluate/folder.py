"""Score a folder in GenEval's layout with the exact evaluator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cotgen.evaluate.exact import evaluate_image
from cotgen.evaluate.summary import Summary, summarize
from cotgen.layout import load_image, read_prompt_folders
from cotgen.world.sampler import check_world_record


def evaluate_folder(root: str | Path, progress: bool = False) -> tuple[list[dict[str, Any]], Summary]:
    """One row per image (GenEval's result keys plus `reasons` and `objects`) and the summary."""
    folders = read_prompt_folders(root)
    for folder in folders:
        check_world_record(folder.record, where=str(folder.path / "metadata.jsonl"))
    rows = []
    images = [(folder, path) for folder in folders for path in folder.samples]
    # disable=None shows the bar only on a terminal, so piped output and errors stay clean.
    for folder, path in tqdm(images, desc="evaluating", unit="img", disable=None if progress else True):
        result = evaluate_image(load_image(path), folder.record)
        rows.append(
            {
                "filename": str(path),
                "tag": folder.record.tag,
                "prompt": folder.record.prompt,
                "correct": result.correct,
                "reason": "\n".join(result.reasons),
                "reasons": list(result.reasons),
                "metadata": folder.record.to_line(),
                "objects": [
                    {"class": o.cls, "color": o.color, "box": o.box.as_list()}
                    for o in result.objects
                ],
                "blobs": [b.as_list() for b in result.blobs],
            }
        )
    return rows, summarize((row["tag"], row["correct"]) for row in rows)


def rows_to_jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)
