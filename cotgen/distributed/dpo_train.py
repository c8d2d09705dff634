"""Iterative DPO on Ray: each round samples with the last policy through the sweep pipeline, pairs
one "yes" with one "no" image per prompt, trains on Ray Train with DeepSpeed ZeRO, saves a Hugging
Face checkpoint and scores it on held-out prompts; the next round starts from it.

    round-0/eval.json                      the starting policy on the held-out prompts
    round-R/prompts.jsonl                  training-split prompts of the round (seed + R)
    round-R/samples/                       a sweep folder: orm@K, one row per path (judge P(yes), exact verdict)
    round-R/pairs.parquet                  prompt ids, chosen/rejected tokens (replayed from path keys), reference log-probs
    round-R/model/                         the trained policy (save_pretrained, safetensors)
    round-R/train_log.jsonl, eval.json     per-step metrics; held-out scores (written last: the round is done)
    ray_train/round-R/                     Ray Train's checkpoints (DeepSpeed state of every rank)

Every stage of a round is resumable: the sweep skips its finished units, pairs and the model are
kept once written, and Ray Train restarts a killed round from its latest checkpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import ray
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from cotgen.config import save_config
from cotgen.distributed.config import SweepConfig
from cotgen.distributed.dpo_config import DPOJobConfig
from cotgen.distributed.dpo_worker import step_batches, train_worker
from cotgen.distributed.pipeline import connect, run_sweep
from cotgen.distributed.store import load_rows
from cotgen.models.presets import resolve
from cotgen.prompts import TAGS, Record, write_records
from cotgen.verify.config import VerifyConfig
from cotgen.world.records import evaluation_records, first_per_tag, sample_records


def round_dir(cfg: DPOJobConfig, r: int) -> Path:
    return Path(cfg.out) / f"round-{r}"


def policy(cfg: DPOJobConfig, r: int) -> str:
    """The policy after round r (round 0: the starting one)."""
    return cfg.generator if r == 0 else str(round_dir(cfg, r) / "model")


def round_records(cfg: DPOJobConfig, r: int) -> list[Record]:
    return [rec for tag in TAGS for rec in sample_records(tag, cfg.prompts_per_tag, "train", cfg.seed + r)]


def sweep_config(cfg: DPOJobConfig, r: int) -> SweepConfig:
    """Round r's sampling: K paths per prompt from round r−1's policy, every one decoded, scored by the
    judge (ORM) and the exact evaluator."""
    return SweepConfig(
        out=str(round_dir(cfg, r) / "samples"), generator=policy(cfg, r - 1), judge=cfg.judge,
        records=str(round_dir(cfg, r) / "prompts.jsonl"), seed=cfg.seed + r, strategies=["orm"], ns=[cfg.samples],
        sampling=cfg.sampling, verify=VerifyConfig(strategy="orm", n=cfg.samples), cluster=cfg.cluster,
        strip_prompts=0, bootstrap=0,
    )  # fmt: skip


def _engine(cfg: DPOJobConfig, r: int):
    """Round r's policy with the sampling settings of the sweep, on the task's GPU when it has one."""
    from cotgen.generate.factory import load_engine

    return load_engine(policy(cfg, r), cfg.sampling, "cuda" if cfg.trainer.use_gpu else "cpu")


def make_pairs(cfg: DPOJobConfig, r: int, rows: list[dict]) -> list[dict]:
    """Pair rows of round r (a Ray task: it loads the policy that sampled them)."""
    from cotgen.dpo.loss import reference_logps
    from cotgen.dpo.pairs import build_pairs, label_rows, regenerate
    from cotgen.generate import prompt_ids
    from cotgen.models.janus import special_tokens

    engine, tokenizer = _engine(cfg, r - 1)
    records = round_records(cfg, r)
    out = []
    for pair in build_pairs(label_rows(rows, cfg.labeller, cfg.label_threshold)):
        record = records[pair.prompt_index]
        ids = prompt_ids(tokenizer, record.prompt)
        chosen, rejected = regenerate(engine, ids, record, pair)
        out.append({
            "prompt_index": pair.prompt_index, "tag": record.tag, "prompt": record.prompt, "prompt_ids": ids,
            "chosen_sample": pair.chosen.key.sample, "rejected_sample": pair.rejected.key.sample,
            "chosen_tokens": chosen.tolist(), "rejected_tokens": rejected.tolist(),
        })  # fmt: skip
    for row, (c, rej) in zip(out, reference_logps(engine.model, out, special_tokens(engine.model).pad)):
        row["ref_chosen"], row["ref_rejected"] = c, rej
    return out


def evaluate_policy(cfg: DPOJobConfig, r: int) -> dict:
    """Held-out GenEval scores of round r's policy by the exact evaluator (a Ray task)."""
    from cotgen.generate.pipeline import generate_and_score

    engine, tokenizer = _engine(cfg, r)
    records = evaluation_records()
    records = first_per_tag(records, cfg.eval.per_tag) if cfg.eval.per_tag else records
    return generate_and_score(engine, tokenizer, records, cfg.eval.samples, cfg.eval.seed).to_json()


def train_round(cfg: DPOJobConfig, r: int, log: Callable[[str], None]) -> None:
    """Ray Train over round r's pairs; the final checkpoint's policy becomes round-R/model."""
    t = cfg.trainer
    folder = round_dir(cfg, r)
    steps = len(step_batches(pq.read_metadata(folder / "pairs.parquet").num_rows, cfg.train, t.workers, 0, r))
    if not steps:
        log(f"round {r}: fewer pairs than one batch ({cfg.train.batch_size}): the policy is kept unchanged")
        previous = policy(cfg, r - 1)
        shutil.copytree(resolve(previous, "generator"), folder / "model")
        return
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={
            "policy": policy(cfg, r - 1), "pairs": str((folder / "pairs.parquet").resolve()), "train": cfg.train,
            "seed": r, "threads": t.threads, "zero_stage": t.zero_stage, "bf16": t.use_gpu,
            "stall_at_step": cfg.faults.stall_at_step if r == 1 else 0, "faults_dir": str(Path(cfg.out) / ".faults"),
        },
        scaling_config=ScalingConfig(num_workers=t.workers, use_gpu=t.use_gpu, resources_per_worker={"CPU": t.cpus_per_worker}),
        torch_config=TorchConfig(backend="nccl" if t.use_gpu else "gloo"),
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
    last = history[-1]
    resumed = f" (resumed at step {last['resumed_at']})" if last["resumed_at"] else ""
    log(f"round {r}: {last['steps']} steps{resumed}, loss {last['loss']:.4f}, margin {last['rewards/margins']:.3f}, "
        f"accuracy {last['rewards/accuracies']:.2f}")  # fmt: skip


def run_dpo(cfg: DPOJobConfig, log: Callable[[str], None] = print) -> list[dict]:
    """Run (or resume) every round; returns the held-out scores of rounds 0..R. The resolved config is
    saved as <out>/config.yaml."""
    cfg = replace(cfg, out=str(Path(cfg.out).resolve()))  # tasks and workers may run elsewhere than the driver's cwd
    save_config(cfg, Path(cfg.out) / "config.yaml")
    connect(sweep_config(cfg, 1))
    scores = []
    for r in range(cfg.rounds + 1):
        folder = round_dir(cfg, r)
        if (folder / "eval.json").is_file():
            log(f"round {r}: done")
        else:
            if r:
                _train_stage(cfg, r, log)
            summary = ray.get(ray.remote(evaluate_policy).options(num_cpus=1, num_gpus=int(cfg.trainer.use_gpu)).remote(cfg, r))
            folder.mkdir(parents=True, exist_ok=True)
            if r:
                _write_card(cfg, r, summary)
            (folder / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
            log(f"round {r}: held-out overall {summary['overall']:.3f} ({summary['images']} images)")
        scores.append(json.loads((folder / "eval.json").read_text()))
    return scores


def _write_card(cfg: DPOJobConfig, r: int, summary: dict) -> None:
    """A model card in round r's model folder: where the policy came from and how it scores."""
    folder = round_dir(cfg, r)
    steps = folder / "train_log.jsonl"
    log = [json.loads(line) for line in steps.read_text().splitlines()] if steps.is_file() else []
    pairs = pq.read_metadata(folder / "pairs.parquet").num_rows
    tags = " | ".join(f"{t} {v['score']:.3f}" for t, v in summary["tags"].items())
    trained = (f"{log[-1]['steps']} DeepSpeed ZeRO-{cfg.trainer.zero_stage} steps on {cfg.trainer.workers} workers, final loss "
               f"{log[-1]['loss']:.4f}, reward margin {log[-1]['rewards/margins']:.3f}" if log else "no step (too few pairs)")
    (folder / "model" / "README.md").write_text(
        f"# Iterative DPO, round {r}\n\nStarting policy: {policy(cfg, r - 1)}. Pairs: {pairs} ({cfg.labeller} labels, "
        f"{cfg.samples} images per prompt, {cfg.prompts_per_tag} training prompts per tag). Training: {trained}; "
        f"beta {cfg.train.beta}, lr {cfg.train.lr}, {cfg.train.epochs} epoch(s).\n\nHeld-out (exact evaluator, "
        f"{summary['images']} images): overall {summary['overall']:.3f} ({tags}).\n\nMade by `jobs/train_dpo.py`; "
        f"the run's config is {Path(cfg.out) / 'config.yaml'}.\n"
    )  # fmt: skip


def _train_stage(cfg: DPOJobConfig, r: int, log: Callable[[str], None]) -> None:
    folder = round_dir(cfg, r)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "pairs.parquet").is_file():
        write_records(folder / "prompts.jsonl", round_records(cfg, r))
        run_sweep(sweep_config(cfg, r), log=lambda line: log(f"round {r}: {line.strip()}"))
        rows = load_rows(folder / "samples").to_pylist()
        task = ray.remote(make_pairs).options(num_cpus=1, num_gpus=int(cfg.trainer.use_gpu))
        pairs = ray.get(task.remote(cfg, r, rows))
        pq.write_table(pa.Table.from_pylist(pairs), folder / "pairs.tmp.parquet")
        (folder / "pairs.tmp.parquet").rename(folder / "pairs.parquet")
        log(f"round {r}: {len(pairs)} pairs from {len(rows)} images of {len(round_records(cfg, r))} prompts ({cfg.labeller} labels)")
    if not (folder / "model").is_dir():
        train_round(cfg, r, log)
