"""Iterative DPO on real Ray: `ray job submit` to a head started here, a 2-worker DeepSpeed ZeRO-2
round on CPU, the job killed mid-training and submitted again, and it continues from the checkpoint.

The run: one round over 6 training prompts (one per tag), K = 8 images each from the embedded
generator, labelled by the exact evaluator, scored by an untrained judge of the embedded judge's
architecture (the sweep asks the judge for every image whatever the labeller)."""

import json
import secrets
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from cotgen.config import load_config
from cotgen.distributed.dpo_config import DPOJobConfig
from cotgen.distributed.dpo_train import latest_checkpoint_step
from cotgen.errors import InputError
from cotgen.models.janus import load_generator
from cotgen.sweep.store import load_rows

pytestmark = pytest.mark.slow


@pytest.fixture
def dpo_config(tmp_path, untrained_judge_dir) -> Path:
    config = {
        "out": str(tmp_path / "dpo"),
        "judge": str(untrained_judge_dir),
        "labeller": "exact",
        "rounds": 1,
        "prompts_per_tag": 1,
        "samples": 8,
        "train": {"lr": 1e-3, "epochs": 4, "batch_size": 2, "micro_batch": 1, "checkpoint_every": 1},
        "trainer": {"workers": 2, "zero_stage": 2},
        "eval": {"per_tag": 1},
        "faults": {"stall_at_step": 2},
    }
    path = tmp_path / "dpo.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(condition, seconds: float, what: str) -> None:
    """Poll `condition` once a second until it holds; fail after `seconds`."""
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def test_job_trains_with_deepspeed_is_killed_and_resumes_from_its_checkpoint(dpo_config, ray_head):
    out = Path(yaml.safe_load(dpo_config.read_text())["out"])
    command = ["--working-dir", ".", "--", "python", "jobs/train_dpo.py", "--config", str(dpo_config)]
    job_id = f"dpo-{secrets.token_hex(4)}"
    first = ray_head.job("submit", "--no-wait", "--submission-id", job_id, *command)
    assert first.returncode == 0, first.stderr[-3000:]
    wait_for(lambda: (out / ".faults" / "trainer").exists(), 400, "the first worker to stall after step 2")
    wait_for(lambda: latest_checkpoint_step(out / "ray_train" / "round-1") == 2, 120, "Ray Train to record the step-2 checkpoint")
    stopped = ray_head.job("stop", job_id)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert not (out / "round-1" / "model").exists()
    pairs_before = (out / "round-1" / "pairs.parquet").stat().st_mtime_ns

    second = ray_head.job("submit", *command)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "round 0: done" in second.stdout and "resumed at step 2" in second.stdout
    assert (out / "round-1" / "pairs.parquet").stat().st_mtime_ns == pairs_before  # not sampled again

    pairs = pq.read_table(out / "round-1" / "pairs.parquet").to_pylist()
    stored = {(r["prompt_index"], r["sample"]): r["tokens"] for r in load_rows(out / "round-1" / "samples").to_pylist()}
    for pair in pairs:  # trained on the tokens the sweep stored, through Ray Data and Parquet
        assert pair["chosen_tokens"] == stored[(pair["prompt_index"], pair["chosen_sample"])]
        assert pair["rejected_tokens"] == stored[(pair["prompt_index"], pair["rejected_sample"])]
    replay = json.loads((out / "round-1" / "replay.json").read_text())
    assert replay["replayed"] == 2 * min(16, len(pairs)) and replay["differ"] == 0  # the default check; this CPU replays exactly
    log = [json.loads(line) for line in (out / "round-1" / "train_log.jsonl").read_text().splitlines()]
    steps = log[0]["steps"]
    assert steps == 4 * (len(pairs) // 2) and [r["step"] for r in log] == list(range(1, steps + 1))
    assert [r["resumed_at"] for r in log] == [0, 0] + [2] * (steps - 2)  # steps 1-2 before the kill, the rest after
    last_epoch = log[-(steps // 4) :]
    assert log[0]["rewards/margins"] == pytest.approx(0, abs=1e-3)  # the policy starts as the reference
    assert sum(r["rewards/margins"] for r in last_epoch) > 0.05 * len(last_epoch)  # and learns to prefer "yes"
    for r in log:
        assert {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"} <= r.keys()
    ray_train = list((out / "ray_train" / "round-1").glob("checkpoint_*/ds"))
    assert ray_train and {p.name for p in ray_train[-1].glob("zero_pp_rank_*_optim_states.pt")} == {
        "zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"
    }  # ZeRO-2 sharded the optimizer over both workers  # fmt: skip

    trained, _ = load_generator(out / "round-1" / "model")  # a save_pretrained folder, usable everywhere
    start, _ = load_generator("embedded")
    changed = [n for n, p in trained.named_parameters() if not torch.equal(p, start.get_parameter(n))]
    assert any("language_model" in n for n in changed) and not any("vqmodel" in n for n in changed)
    scores = [json.loads((out / f"round-{r}" / "eval.json").read_text()) for r in (0, 1)]
    assert all(s["images"] == 6 == len(s["verdicts"]) for s in scores) and scores[0]["verdict_tags"] == scores[1]["verdict_tags"]
    card = (out / "round-1" / "model" / "README.md").read_text()
    assert f"overall {scores[1]['overall']:.3f} [" in card and f"0 of {replay['replayed']} paths replayed" in card
    assert f"against the starting policy {scores[1]['overall'] - scores[0]['overall']:+.3f} (paired 95 % interval [" in card
    assert f"reward margin {log[-1]['rewards/margins']:.3f}, preference accuracy {log[-1]['rewards/accuracies']:.2f}" in card
    timing = json.loads((out / "round-1" / "timing.json").read_text())
    assert {"sample", "pair", "train", "score"} <= timing.keys() and all(v >= 0 for v in timing.values())
    assert f"pair {timing['pair']:.0f} s" in card and "Time per phase" in card
    progress = (out / "round-1" / "train_progress.log").read_text().splitlines()
    assert progress[-1].startswith(f"DPO step {steps}/{steps}: loss ")  # the steps after the restart, shown as they go
    assert "round 1: overall" in second.stdout and (out / "config.yaml").is_file()


def test_bad_dpo_configs_name_the_field(dpo_config):
    with pytest.raises(InputError, match=r"dpo.yaml: .*labeller"):
        load_config(DPOJobConfig, dpo_config, ["labeller=human"])
    with pytest.raises(InputError, match=r"dpo.yaml: .*train.batch_size"):
        load_config(DPOJobConfig, dpo_config, ["trainer.workers=3"])
    with pytest.raises(InputError, match=r"dpo.yaml: .*trainer.zero_stage"):
        load_config(DPOJobConfig, dpo_config, ["trainer.zero_stage=1"])
    with pytest.raises(InputError, match=r"dpo.yaml: .*samples"):
        load_config(DPOJobConfig, dpo_config, ["samples=1"])
    with pytest.raises(InputError, match=r"dpo.yaml: .*trainer.device: expected cpu or cuda \(Ray chooses the GPU\), got 'cuda:1'"):
        load_config(DPOJobConfig, dpo_config, ["trainer.device=cuda:1"])
    with pytest.raises(InputError, match=r"dpo.yaml: .*trainer.device: expected cpu or cuda \(Ray chooses the GPU\), got 'gpu'"):
        load_config(DPOJobConfig, dpo_config, ["trainer.device=gpu"])
    with pytest.raises(InputError, match=r"dpo.yaml: .*trainer.resources_per_worker.GPU: a custom resource"):
        load_config(DPOJobConfig, dpo_config, ["trainer.resources_per_worker.GPU=1"])
    placed = load_config(DPOJobConfig, dpo_config, ["trainer.resources_per_worker.spot_trainer=1", "cluster.resources_per_judge.head=0.5"])
    assert placed.trainer.resources_per_worker == {"spot_trainer": 1.0} and placed.cluster.resources_per_judge == {"head": 0.5}
    with pytest.raises(InputError, match=r"dpo.yaml: cluster: resources_per_generator.spot: a custom resource with an amount above 0"):
        load_config(DPOJobConfig, dpo_config, ["cluster.resources_per_generator.spot=0"])


def test_each_step_splits_its_pairs_between_the_workers():
    from cotgen.train.dpo.batches import step_batches
    from cotgen.train.dpo.config import DPOTrainConfig

    train = DPOTrainConfig(batch_size=4, micro_batch=1, epochs=2)
    ranks = [step_batches(10, train, workers=2, rank=rank, seed=1) for rank in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 4  # 2 whole steps of 4 pairs per epoch; 2 pairs left out each epoch
    for epoch in (0, 1):
        seen = [i for step in range(2 * epoch, 2 * epoch + 2) for rank in ranks for micro in rank[step] for i in micro]
        assert len(seen) == len(set(seen)) == 8 and all(len(m) == 1 for r in ranks for m in r[2 * epoch])
    assert ranks[0][:2] != ranks[0][2:]  # each epoch its own shuffle
    assert step_batches(10, train, 2, 0, seed=1) == ranks[0] and step_batches(10, train, 2, 0, seed=2) != ranks[0]
