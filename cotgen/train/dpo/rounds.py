"""A DPO run folder, round by round, and the models it was started with.

    models.json                            the starting policy's and the judge's weights digests
    round-0/eval.json                      the starting policy on the held-out prompts
    round-R/prompts.jsonl                  training-split prompts of the round (seed + R)
    round-R/samples/                       a sweep folder: orm@K, one row per path (judge P(yes), exact verdict)
    round-R/replay.json                    the replay check: pairs' paths replayed from their keys that differ from the stored tokens
    round-R/pairs.parquet                  prompt ids, chosen/rejected tokens (stored by the sweep), reference log-probs
    round-R/model/                         the trained policy (save_pretrained, safetensors) and its card
    round-R/train_log.jsonl                per-step metrics
    round-R/train_progress.log             a line every tenth of the steps while training (loss, margin, time left)
    round-R/timing.json                    seconds per phase: sample, pair, train, score
    round-R/eval.json                      held-out scores and every image's verdict (written last: the round is done)
    ray_train/round-R/                     Ray Train's checkpoints (DeepSpeed state of every rank)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import yaml

from cotgen.errors import InputError
from cotgen.evaluate.summary import summarize
from cotgen.generate.factory import load_engine
from cotgen.generate.pipeline import generate_verdicts
from cotgen.models.presets import weights_digest
from cotgen.prompts import TAGS, Record
from cotgen.train.dpo.config import DPOConfig
from cotgen.world.records import evaluation_records, first_per_tag, sample_records, tuning_records

ROLES = ("generator", "judge")
SETTINGS = ("labeller", "label_threshold", "prompts_per_tag", "samples", "pairs_per_prompt", "seed", "sampling", "replay_check",
            "train", "trainer.workers", "eval")  # fmt: skip
"""What a run's rounds are made with (the models are checked by their weights): a resumed run keeps
them; `rounds` may grow and the cluster, storage and placement may change."""


def round_dir(cfg: DPOConfig, r: int) -> Path:
    return Path(cfg.out) / f"round-{r}"


def policy(cfg: DPOConfig, r: int) -> str:
    """The policy after round r (round 0: the starting one)."""
    return cfg.generator if r == 0 else str(round_dir(cfg, r) / "model")


def round_records(cfg: DPOConfig, r: int) -> list[Record]:
    """Round r's training-split prompts: `prompts_per_tag` of each tag, drawn with seed + r."""
    return [rec for tag in TAGS for rec in sample_records(tag, cfg.prompts_per_tag, "train", cfg.seed + r)]


def scored_records(cfg: DPOConfig) -> list[Record]:
    """The records every round is scored on: held-out, or training-split ones in GenEval's tag mix."""
    records = evaluation_records() if cfg.eval.split == "heldout" else tuning_records(cfg.eval.seed)
    return first_per_tag(records, cfg.eval.per_tag) if cfg.eval.per_tag else records


def heldout_scores(cfg: DPOConfig, r: int) -> dict:
    """GenEval scores of round r's policy on `scored_records` by the exact evaluator (`Summary.to_json`), with
    every image's verdict (`verdicts`, the same records and keys in every round: they pair up)."""
    engine, tokenizer = load_engine(policy(cfg, r), cfg.sampling, cfg.trainer.device)
    records = scored_records(cfg)
    verdicts = generate_verdicts(engine, tokenizer, records, cfg.eval.samples, cfg.eval.seed)
    return {**summarize(verdicts).to_json(), "verdicts": [bool(ok) for _, ok in verdicts], "verdict_tags": [t for t, _ in verdicts]}


def check_models(cfg: DPOConfig) -> None:
    """Record the weights digests of the starting policy and the judge in <out>/models.json, or, in a
    folder that has them, refuse models whose weights differ: a run resumed with another model
    (the same name retrained, a folder overwritten) would mix two models' samples and policies."""
    path = Path(cfg.out) / "models.json"
    models = {role: {"name": str(getattr(cfg, role)), "weights_digest": weights_digest(getattr(cfg, role), role)} for role in ROLES}
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(models, indent=2) + "\n")
        return
    recorded = json.loads(path.read_text())
    for role in ROLES:
        now, then = models[role], recorded[role]
        if now["weights_digest"] != then["weights_digest"]:
            raise InputError(
                f"{role}: {now['name']} has weights digest {now['weights_digest']}, but {cfg.out} was run with "
                f"{then['name']} of weights digest {then['weights_digest']}; resume with that {role} or start another run folder"
            )


def check_settings(cfg: DPOConfig) -> None:
    """Refuse to resume a run folder whose config.yaml was written with other `SETTINGS`: later rounds
    would be made otherwise than earlier ones (another learning rate, labeller, pair count...) and the
    run's table would mix them."""
    path = Path(cfg.out) / "config.yaml"
    if not path.is_file():
        return
    before = _leaves(yaml.safe_load(path.read_text()) or {})
    now = _leaves(yaml.safe_load(yaml.safe_dump(dataclasses.asdict(cfg))))
    changed = [f"{key}: {before.get(key)!r} → {now.get(key)!r}" for key in sorted(before.keys() | now.keys())
               if _is_setting(key) and before.get(key) != now.get(key)]  # fmt: skip
    if changed:
        raise InputError(f"{cfg.out} was run with other settings ({'; '.join(changed)}); resume with the same settings or start another run folder")


def _is_setting(key: str) -> bool:
    return any(key == name or key.startswith(name + ".") for name in SETTINGS)


def _leaves(config: dict, prefix: str = "") -> dict:
    """{"train.lr": 1e-05, ...}: every value of a nested config under its dotted name."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
