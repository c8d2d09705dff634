"""Score a folder in GenEval's layout with the detector evaluator (real images, any COCO class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm import tqdm

from cotgen.evaluate.detector import GenEvalDetector
from cotgen.evaluate.folder import result_row
from cotgen.evaluate.summary import Summary, summarize
from cotgen.layout import load_image, read_prompt_folders


def detect_folder(root: str | Path, detector: GenEvalDetector, progress: bool = False) -> tuple[list[dict[str, Any]], Summary]:
    """One row per image, as `evaluate_folder` writes them (an object's colour is "" when no clause
    asked for it), and the summary."""
    rows = []
    images = [(folder, path) for folder in read_prompt_folders(root) for path in folder.samples]
    for folder, path in tqdm(images, desc="detecting", unit="img", disable=None if progress else True):
        rows.append(result_row(path, folder.record, detector.evaluate(load_image(path), folder.record)))
    return rows, summarize((row["tag"], row["correct"]) for row in rows)
