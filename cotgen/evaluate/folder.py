"""Score a folder in GenEval's layout with the exact evaluator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cotgen.evaluate.exact import Evaluation, evaluate_image
from cotgen.evaluate.summary import Summary, summarize
from cotgen.layout import load_image, read_prompt_folders
from cotgen.prompts import Record
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
        rows.append(result_row(path, folder.record, evaluate_image(load_image(path), folder.record)))
    return rows, summarize((row["tag"], row["correct"]) for row in rows)


def result_row(path: Path, record: Record, result: Evaluation) -> dict[str, Any]:
    """GenEval's result keys plus `reasons`, the objects judged and the unrecognised blobs."""
    return {
        "filename": str(path),
        "tag": record.tag,
        "prompt": record.prompt,
        "correct": result.correct,
        "reason": "\n".join(result.reasons),
        "reasons": list(result.reasons),
        "metadata": record.to_line(),
        "objects": [{"class": o.cls, "color": o.color, "box": o.box.as_list()} for o in result.objects],
        "blobs": [b.as_list() for b in result.blobs],
    }


def rows_to_jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)
