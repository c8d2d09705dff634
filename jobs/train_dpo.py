"""Iterative DPO of a Janus generator on Ray Train with DeepSpeed ZeRO.

    python jobs/train_dpo.py --config jobs/configs/dpo_demo.yaml [key=value ...]
    ray job submit --working-dir . -- python jobs/train_dpo.py --config jobs/configs/dpo_demo.yaml

1. Config: load and validate (`cotgen.distributed.dpo_config.DPOJobConfig`); the weights digests of
   the starting policy and the judge are recorded in <out>/models.json (a rerun with other weights
   stops); the resolved copy is saved as <out>/config.yaml. Rerunning the same command resumes: a
   round with eval.json is done; within a round the sweep keeps its finished units, the pairs and
   the model are kept once written, and Ray Train restarts a killed fit from its latest checkpoint.
2. Round 0: the starting policy's held-out scores (exact evaluator).
3. Round r = 1..R: K samples per training prompt from round r−1's policy through the sweep pipeline
   (judge P(yes) and exact verdict per image) → "yes" images paired with "no" images of the same
   prompt, up to pairs_per_prompt distinct couples (`cotgen.train.dpo.pairs`), on the image tokens
   the sweep stored with their rows (a sample of the pairs replayed from their path keys as a check,
   counted in round-r/replay.json), reference log-probs precomputed in the precision the policy
   trains in → a Ray Train TorchTrainer whose workers run DeepSpeed ZeRO on the sigmoid DPO loss
   (`cotgen.train.dpo.loss`, `cotgen.distributed.dpo_train`) → round-r/model (save_pretrained, with
   a card: pairs, labels, final margin and accuracy, held-out scores with their intervals, time per
   phase and machine) → held-out scores. The seconds of each phase go to round-r/timing.json.
   The folder's layout: `cotgen.train.dpo.rounds`.
4. Report: the held-out overall of every round.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cotgen.distributed.dpo_config import DPOJobConfig
from cotgen.distributed.dpo_train import connect_cluster, fit_round, pair_round, sample_round, score_round
from cotgen.errors import InputError
from cotgen.models.presets import resolve
from cotgen.recipe import parse_config, run, save_resolved
from cotgen.train.dpo.batches import step_batches
from cotgen.train.dpo.card import score_line, timed_phase, write_round_card
from cotgen.train.dpo.rounds import check_models, check_settings, policy, round_dir, round_records


def log(line: str) -> None:
    print(line, flush=True)  # `ray job logs` shows it as it happens


def main(argv: list[str]) -> int:
    cfg = parse_config(DPOJobConfig, argv, __doc__, "rounds=3 labeller=exact judge=JUDGE_DIR")
    cfg = replace(cfg, out=str(Path(cfg.out).resolve()))  # tasks and workers may run elsewhere than the driver's cwd
    check_models(cfg)
    check_settings(cfg)
    save_resolved(cfg, cfg.out)
    connect_cluster(cfg)
    start = time.time()

    scores = []
    for r in range(cfg.rounds + 1):
        folder = round_dir(cfg, r)
        if (folder / "eval.json").is_file():
            log(f"round {r}: done")
            scores.append(json.loads((folder / "eval.json").read_text()))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / "pairs.parquet").is_file() and not (folder / "replay.json").is_file():
            raise InputError(f"{folder}: pairs.parquet was made before pairs kept their sampled tokens (no replay.json); delete it to pair again")
        if r and not (folder / "pairs.parquet").is_file():
            with timed_phase(cfg, r, "sample"):
                rows = sample_round(cfg, r, log)
            with timed_phase(cfg, r, "pair"):
                pairs, replay = pair_round(cfg, r, rows)
            (folder / "replay.json").write_text(json.dumps(replay, indent=2) + "\n")
            log(f"round {r}: replay check: {replay['differ']} of {replay['replayed']} paths replayed to other tokens than stored (trained on the stored ones)")
            pq.write_table(pa.Table.from_pylist(pairs), folder / "pairs.tmp.parquet")
            (folder / "pairs.tmp.parquet").rename(folder / "pairs.parquet")
            log(f"round {r}: {len(pairs)} pairs from {len(rows)} images of {len(round_records(cfg, r))} prompts ({cfg.labeller} labels)")
        if r and not (folder / "model").is_dir():
            pairs = pq.read_metadata(folder / "pairs.parquet").num_rows
            if step_batches(pairs, cfg.train, cfg.trainer.workers, 0, r):
                with timed_phase(cfg, r, "train"):
                    last = fit_round(cfg, r)[-1]
                resumed = f" (resumed at step {last['resumed_at']})" if last["resumed_at"] else ""
                log(f"round {r}: {last['steps']} steps{resumed}, loss {last['loss']:.4f}, "
                    f"margin {last['rewards/margins']:.3f}, accuracy {last['rewards/accuracies']:.2f}")  # fmt: skip
            else:
                log(f"round {r}: fewer pairs than one batch ({cfg.train.batch_size}): the policy is kept unchanged")
                shutil.copytree(resolve(policy(cfg, r - 1), "generator"), folder / "model")
        with timed_phase(cfg, r, "score"):
            summary = score_round(cfg, r)
        if r:
            write_round_card(cfg, r, summary)
        (folder / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")  # last: the round is done
        log(f"round {r}: {cfg.eval.split} {score_line(summary, scores[0] if r else None)} ({summary['images']} images)")
        scores.append(summary)

    print(f"finished in {time.time() - start:.0f} s")
    for r, summary in enumerate(scores):
        tags = " ".join(f"{t} {s['score']:.3f}" for t, s in summary["tags"].items())
        print(f"round {r}: overall {summary['overall']:.3f}  ({tags})")
    print(f"policy: {policy(cfg, cfg.rounds)}")
    return 0


if __name__ == "__main__":
    run(main, "train_dpo")
