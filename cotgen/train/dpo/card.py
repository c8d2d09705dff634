"""The model card of a DPO round's policy (README.md in round-R/model)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from cotgen.train.dpo.config import DPOConfig
from cotgen.train.dpo.rounds import policy, round_dir


def write_round_card(cfg: DPOConfig, r: int, summary: dict) -> None:
    """Where round r's policy came from (starting policy, pairs, training) and how it scores held-out."""
    folder = round_dir(cfg, r)
    steps = folder / "train_log.jsonl"
    log = [json.loads(line) for line in steps.read_text().splitlines()] if steps.is_file() else []
    pairs = pq.read_metadata(folder / "pairs.parquet").num_rows
    replay = json.loads((folder / "replay.json").read_text())
    tags = " | ".join(f"{t} {v['score']:.3f}" for t, v in summary["tags"].items())
    trained = (f"{log[-1]['steps']} DeepSpeed ZeRO-{cfg.trainer.zero_stage} steps on {cfg.trainer.workers} workers, final loss "
               f"{log[-1]['loss']:.4f}, reward margin {log[-1]['rewards/margins']:.3f}" if log else "no step (too few pairs)")
    (folder / "model" / "README.md").write_text(
        f"# Iterative DPO, round {r}\n\nStarting policy: {policy(cfg, r - 1)}. Pairs: {pairs} ({cfg.labeller} labels, "
        f"{cfg.samples} images per prompt, {cfg.prompts_per_tag} training prompts per tag; trained on their stored tokens, "
        f"of which {replay['differ']} of {replay['replayed']} paths replayed from their keys differ). Training: {trained}; "
        f"beta {cfg.train.beta}, lr {cfg.train.lr}, {cfg.train.epochs} epoch(s).\n\nHeld-out (exact evaluator, "
        f"{summary['images']} images): overall {summary['overall']:.3f} ({tags}).\n\nMade by `jobs/train_dpo.py`; "
        f"the run's config is {Path(cfg.out) / 'config.yaml'}.\n"
    )  # fmt: skip
