"""The model card of a DPO round's policy (README.md in round-R/model), and the round's timings."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from cotgen.evaluate.bootstrap import bootstrap_ci, paired_difference_ci
from cotgen.machine import describe_machine
from cotgen.train.dpo.config import DPOConfig
from cotgen.train.dpo.rounds import policy, round_dir

RESAMPLES = 1000
SPLIT_NAMES = {"heldout": "Held-out", "train": "Training split (for choosing settings)"}


@contextmanager
def timed_phase(cfg: DPOConfig, r: int, phase: str) -> Iterator[None]:
    """Record how long a phase of round r took (sample, pair, train, score) in round-R/timing.json
    when it completes; a phase finished in an earlier attempt of the round keeps its time."""
    start = time.monotonic()
    yield
    path = round_dir(cfg, r) / "timing.json"
    timing = json.loads(path.read_text()) if path.is_file() else {}
    timing[phase] = round(time.monotonic() - start, 1)
    path.write_text(json.dumps(timing, indent=2) + "\n")


def score_line(summary: dict, start: dict | None) -> str:
    """Overall with its 95 % bootstrap interval and, against the starting policy's images of
    the same records and keys, the difference with its paired interval."""
    tags, mine = np.array(summary["verdict_tags"]), np.array(summary["verdicts"], bool)
    lo, hi = bootstrap_ci(tags, mine, RESAMPLES)
    line = f"overall {summary['overall']:.3f} [{lo:.3f}, {hi:.3f}]"
    if start and start.get("verdict_tags") == summary["verdict_tags"]:
        d_lo, d_hi = paired_difference_ci(tags, mine, np.array(start["verdicts"], bool), RESAMPLES)
        line += f"; against the starting policy {summary['overall'] - start['overall']:+.3f} (paired 95 % interval [{d_lo:+.3f}, {d_hi:+.3f}])"
    return line


def write_round_card(cfg: DPOConfig, r: int, summary: dict) -> None:
    """Where round r's policy came from (starting policy, pairs and their labels, training), how it
    scores held-out (with intervals), what each phase took and on what machine."""
    folder = round_dir(cfg, r)
    steps = folder / "train_log.jsonl"
    log = [json.loads(line) for line in steps.read_text().splitlines()] if steps.is_file() else []
    pairs = pq.read_metadata(folder / "pairs.parquet").num_rows
    replay = json.loads((folder / "replay.json").read_text())
    start_eval = round_dir(cfg, 0) / "eval.json"
    start = json.loads(start_eval.read_text()) if start_eval.is_file() else None
    timing = json.loads((folder / "timing.json").read_text()) if (folder / "timing.json").is_file() else {}
    tags = " | ".join(f"{t} {v['score']:.3f}" for t, v in summary["tags"].items())
    trained = (f"{log[-1]['steps']} DeepSpeed ZeRO-{cfg.trainer.zero_stage} steps on {cfg.trainer.workers} workers; at the end "
               f"loss {log[-1]['loss']:.4f}, reward margin {log[-1]['rewards/margins']:.3f}, preference accuracy "
               f"{log[-1]['rewards/accuracies']:.2f} (the last step's batch)" if log else "no step (too few pairs)")
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in timing.items()) or "not recorded"
    (folder / "model" / "README.md").write_text(
        f"# Iterative DPO, round {r}\n\nStarting policy: {policy(cfg, r - 1)}.\n\n"
        f"Pairs: {pairs}, labelled by {'the judge' if cfg.labeller == 'judge' else 'the exact evaluator (an oracle)'} "
        f"({cfg.labeller}); {cfg.samples} images per prompt, {cfg.prompts_per_tag} training prompts per tag, at most "
        f"{cfg.pairs_per_prompt} pair(s) per prompt; trained on their stored tokens, of which {replay['differ']} of "
        f"{replay['replayed']} paths replayed from their keys differ.\n\nTraining: {trained}; beta {cfg.train.beta}, lr "
        f"{cfg.train.lr}, {cfg.train.epochs} epoch(s).\n\n{SPLIT_NAMES[cfg.eval.split]} (exact evaluator, {summary['images']} images, seed "
        f"{cfg.eval.seed}): {score_line(summary, start)}. By tag: {tags}.\n\nTime per phase: {phases}, on "
        f"{describe_machine()}.\n\nMade by `jobs/train_dpo.py`; the run's config is {Path(cfg.out) / 'config.yaml'}.\n"
    )  # fmt: skip
