"""The Ray side of an iterative DPO round; the round loop is the recipe's (`jobs/train_dpo.py`).

- `sample_round`: K paths per prompt from the last policy through the sweep pipeline (Ray Data),
  every one decoded and scored by the judge (ORM) and the exact evaluator.
- `pair_round`, `score_round`: `pair_rows` (with its replay check) and `heldout_scores` as Ray tasks,
  on the trainer's device.
- `fit_round`: a Ray Train TorchTrainer whose workers (`dpo_worker`) run DeepSpeed ZeRO over the
  round's pairs; a killed round restarts from Ray Train's latest checkpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import ray
import torch
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from cotgen.distributed.dpo_config import DPOJobConfig
from cotgen.distributed.dpo_worker import train_worker
from cotgen.distributed.pipeline import connect, run_sweep
from cotgen.prompts import write_records
from cotgen.sweep.config import SweepConfig
from cotgen.sweep.store import load_rows
from cotgen.train.dpo.loss import policy_dtype
from cotgen.train.dpo.pairs import pair_rows
from cotgen.train.dpo.rounds import heldout_scores, policy, round_dir, round_records
from cotgen.verify.config import VerifyConfig


def sweep_config(cfg: DPOJobConfig, r: int) -> SweepConfig:
    """Round r's sampling: K paths per prompt from round r−1's policy, every one decoded, scored by the
    judge (ORM) and the exact evaluator."""
    return SweepConfig(
        out=str(round_dir(cfg, r) / "samples"), generator=policy(cfg, r - 1), judge=cfg.judge,
        records=str(round_dir(cfg, r) / "prompts.jsonl"), seed=cfg.seed + r, strategies=["orm"], ns=[cfg.samples],
        sampling=cfg.sampling, verify=VerifyConfig(strategy="orm", n=cfg.samples), cluster=cfg.cluster,
        strip_prompts=0, bootstrap=0,
    )  # fmt: skip


def connect_cluster(cfg: DPOJobConfig) -> None:
    """Join the configured Ray cluster (or the one `ray job submit` names), or start one here."""
    connect(sweep_config(cfg, 1))


def sample_round(cfg: DPOJobConfig, r: int, log: Callable[[str], None]) -> list[dict]:
    """Round r's prompts (prompts.jsonl), each sampled K times by round r−1's policy: the sweep's rows.
    A rerun keeps the units the sweep finished."""
    write_records(round_dir(cfg, r) / "prompts.jsonl", round_records(cfg, r))
    run_sweep(sweep_config(cfg, r), log=lambda line: log(f"round {r}: {line.strip()}"))
    return load_rows(round_dir(cfg, r) / "samples").to_pylist()


def pair_round(cfg: DPOJobConfig, r: int, rows: list[dict]) -> tuple[list[dict], dict]:
    """Round r's pair rows and replay check (`pair_rows`), made by a Ray task that loads the policy that
    sampled them; reference log-probs in the precision the workers train in."""
    task = ray.remote(pair_rows).options(num_cpus=1, num_gpus=cfg.trainer.gpus)
    device = cfg.trainer.device
    return ray.get(task.remote(policy(cfg, r - 1), cfg.sampling, device, policy_dtype(device), round_records(cfg, r), rows,
                               cfg.labeller, cfg.label_threshold, cfg.replay_check, cfg.pairs_per_prompt))  # fmt: skip


def score_round(cfg: DPOJobConfig, r: int) -> dict:
    """Held-out scores of round r's policy, by a Ray task."""
    return ray.get(ray.remote(heldout_scores).options(num_cpus=1, num_gpus=cfg.trainer.gpus).remote(cfg, r))


def fit_round(cfg: DPOJobConfig, r: int) -> list[dict]:
    """Ray Train over round r's pairs: the final checkpoint's policy becomes round-R/model and its
    per-step metrics round-R/train_log.jsonl; returns them."""
    t = cfg.trainer
    folder = round_dir(cfg, r)
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={
            "policy": policy(cfg, r - 1), "pairs": str((folder / "pairs.parquet").resolve()), "train": cfg.train,
            "seed": r, "threads": t.threads, "zero_stage": t.zero_stage, "bf16": policy_dtype(t.device) == torch.bfloat16,
            "stall_at_step": cfg.faults.stall_at_step if r == 1 else 0, "faults_dir": str(Path(cfg.out) / ".faults"),
        },
        scaling_config=ScalingConfig(num_workers=t.workers, use_gpu=t.device == "cuda", resources_per_worker={"CPU": t.cpus_per_worker, **t.resources_per_worker}),
        torch_config=TorchConfig(backend="nccl" if t.device == "cuda" else "gloo"),
        run_config=RunConfig(
            name=f"round-{r}", storage_path=str(Path(t.storage or Path(cfg.out) / "ray_train").resolve()),
            checkpoint_config=CheckpointConfig(num_to_keep=2), failure_config=FailureConfig(max_failures=t.max_failures),
        ),
    )  # fmt: skip
    result = trainer.fit()
    with result.checkpoint.as_directory() as checkpoint:
        history = json.loads((Path(checkpoint) / "metrics.json").read_text())
        shutil.copytree(Path(checkpoint) / "model", folder / "model.tmp", dirs_exist_ok=True)
    (folder / "train_log.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    (folder / "model.tmp").rename(folder / "model")
    return history


def latest_checkpoint_step(run: Path) -> int | None:
    """The step of the latest checkpoint Ray Train has registered for a run: what a restarted fit
    resumes from (Ray Train's own snapshot of its checkpoint manager)."""
    try:
        latest = json.loads((run / "checkpoint_manager_snapshot.json").read_text())["latest_checkpoint_result"]
    except (FileNotFoundError, ValueError):  # not written yet, or caught mid-write
        return None
    return latest["metrics"]["step"] if latest else None
