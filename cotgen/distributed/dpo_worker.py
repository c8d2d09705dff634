"""One Ray Train worker of a DPO round: DeepSpeed ZeRO over the Janus language model.

Every worker reads the round's pairs, takes its share of each optimizer step's batch (micro-batches
of `micro_batch` pairs, accumulated), and reports TRL's metrics, averaged over workers, through
`ray.train.report` after every step. Checkpoints (every `checkpoint_every` steps and at the end) hold
the DeepSpeed state of every rank (`ds/`, for resuming), the metrics so far and, at the end, the
policy as a Hugging Face folder (`model/`); a restarted run resumes from Ray Train's latest one.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import ray.train
import torch
import torch.distributed as dist

from cotgen.train.dpo.batches import step_batches
from cotgen.train.dpo.config import DPOTrainConfig
from cotgen.train.dpo.loss import collate, dpo_step

FROZEN = ("vqmodel", "vision_model", "aligner")
"""Janus parts that image generation does not train: the VQ tokenizer and the understanding tower."""


def deepspeed_config(train: DPOTrainConfig, workers: int, zero_stage: int, bf16: bool) -> dict:
    return {
        "train_batch_size": train.batch_size,
        "train_micro_batch_size_per_gpu": train.micro_batch,
        "gradient_accumulation_steps": train.accumulation(workers),
        "gradient_clipping": train.max_grad_norm,
        "zero_optimization": {"stage": zero_stage},
        "bf16": {"enabled": bf16},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def train_worker(config: dict) -> None:
    import deepspeed

    from cotgen.models.janus import load_generator, special_tokens

    train: DPOTrainConfig = config["train"]
    torch.set_num_threads(config["threads"])
    context = ray.train.get_context()
    rank, workers = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    model, tokenizer = load_generator(config["policy"])
    model.to(device).train()
    for name in FROZEN:
        getattr(model.model, name).requires_grad_(False)
    if device.type == "cpu":
        _without_shm_comm()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=train.lr, weight_decay=train.weight_decay)
    engine, *_ = deepspeed.initialize(
        model=model, optimizer=optimizer, config=deepspeed_config(train, workers, config["zero_stage"], config["bf16"])
    )
    rows = pq.read_table(config["pairs"]).to_pylist()
    steps = step_batches(len(rows), train, workers, rank, config["seed"])
    pad, history, start = special_tokens(model).pad, [], 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            _, state = engine.load_checkpoint(folder, tag="ds")
            start, history = state["step"], json.loads((Path(folder) / "metrics.json").read_text())
    clock = time.monotonic()
    for step in range(start, len(steps)):
        sums: dict[str, torch.Tensor] = {}
        for micro in steps[step]:
            loss, metrics = dpo_step(engine.module, collate([rows[i] for i in micro], pad), train.beta)
            engine.backward(loss)
            engine.step()
            for k, v in {"loss": loss.detach()[None] * len(micro), **metrics}.items():
                sums[k] = sums.get(k, 0) + v.double().sum().cpu()
        record = {"step": step + 1, "steps": len(steps), "resumed_at": start, **_mean_over_workers(sums, train.batch_size)}
        history.append(record)
        if rank == 0:
            _progress(record, clock, start, Path(config["pairs"]).with_name("train_progress.log"))
        last = step + 1 == len(steps)
        if last or (train.checkpoint_every and (step + 1) % train.checkpoint_every == 0):
            with tempfile.TemporaryDirectory() as folder:
                _save(engine, tokenizer, folder, step + 1, history, rank, final=last)
                ray.train.report(record, checkpoint=ray.train.Checkpoint.from_directory(folder))
            if rank == 0 and step + 1 == config["stall_at_step"]:
                _stall_once(Path(config["faults_dir"]))
        else:
            ray.train.report(record)


def _progress(record: dict, clock: float, start: int, path: Path) -> None:
    """A line about every tenth of the steps, printed (the worker's log) and appended to `path` beside
    the round's pairs (Ray Train does not forward the workers' output to the driver)."""
    step, steps = record["step"], record["steps"]
    if step % max(1, steps // 10) and step != steps:
        return
    elapsed = time.monotonic() - clock
    left = elapsed / (step - start) * (steps - step)
    line = (f"DPO step {step}/{steps}: loss {record['loss']:.4f}, reward margin {record['rewards/margins']:.3f}, "
            f"preference accuracy {record['rewards/accuracies']:.2f}; {elapsed:.0f} s, about {left:.0f} s left")  # fmt: skip
    print(line, flush=True)
    with path.open("a") as log:
        log.write(line + "\n")


def _without_shm_comm() -> None:
    """On CPU, DeepSpeed builds its shared-memory all-reduce when it starts (a C++ op, JIT-compiled
    with g++ on every fresh node: minutes on a small machine). ZeRO training never calls it (it serves
    inference tensor parallelism), so it is marked unavailable and torch.distributed's gloo is used."""
    import deepspeed.ops
    from deepspeed.ops.op_builder.cpu.comm import ShareMemCommBuilder

    deepspeed.ops.__compatible_ops__[ShareMemCommBuilder.NAME] = False


def _stall_once(folder: Path) -> None:
    """Fault injection for the tests: hang (until the job is killed), unless done before in this run."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        (folder / "trainer").touch(exist_ok=False)
    except FileExistsError:
        return
    time.sleep(3600)


def _mean_over_workers(sums: dict[str, torch.Tensor], batch_size: int) -> dict[str, float]:
    names = sorted(sums)
    total = torch.stack([sums[k] for k in names])
    if dist.is_initialized():
        dist.all_reduce(total)
    return {k: float(v) / batch_size for k, v in zip(names, total)}


def _save(engine, tokenizer, folder: str, step: int, history: list[dict], rank: int, final: bool) -> None:
    """Every rank writes its DeepSpeed shard into `folder` (Ray Train merges the workers' folders)."""
    import deepspeed

    engine.save_checkpoint(folder, tag="ds", client_state={"step": step})
    if final:  # under ZeRO-3 the parameters are gathered (a collective: every rank takes part)
        with deepspeed.zero.GatheredParameters(list(engine.module.parameters()), modifier_rank=None):
            if rank == 0:
                engine.module.save_pretrained(Path(folder) / "model")
                tokenizer.save_pretrained(Path(folder) / "model")
    if rank == 0:
        (Path(folder) / "metrics.json").write_text(json.dumps(history))
