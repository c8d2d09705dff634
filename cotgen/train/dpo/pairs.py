"""Preference pairs as in the paper: per prompt, K labelled samples of the current policy; a "yes"
image paired with a "no" (one couple per prompt, or up to `pairs_per_prompt` distinct ones); prompts
whose samples all got the same label are dropped.

A pair trains on the image tokens the sweep stored with each sampled path's row: the very images
that were labelled. Replaying a path from its key reproduces them only where the kernels are
bit-identical across batch shapes (not promised by bf16 or GPU kernels), so replay is a check here:
a sample of the pairs' paths is replayed and any that differ from the stored tokens are reported.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import torch

from cotgen.errors import InputError
from cotgen.generate.engine import PathKey, StepwiseGenerator
from cotgen.generate.factory import load_engine, prompt_ids
from cotgen.generate.sampling import Sampling
from cotgen.models.janus import special_tokens
from cotgen.prompts import Record
from cotgen.train.dpo.config import LABELLERS
from cotgen.train.dpo.loss import reference_logps

logger = logging.getLogger(__name__)

REPLAY_BATCH = 16
"""Paths replayed in one batch by the replay check."""


@dataclass(frozen=True)
class Sample:
    prompt_index: int
    key: PathKey
    label: bool
    """The labeller's verdict: does the image match its prompt?"""
    tokens: tuple[int, ...]
    """The image's tokens as the sweep stored them: what the pair trains on."""
    correct: bool | None = None
    """The exact evaluator's verdict, when known."""


@dataclass(frozen=True)
class Pair:
    prompt_index: int
    chosen: Sample
    rejected: Sample


def label_rows(rows: list[dict], labeller: str, threshold: float = 0.5) -> list[Sample]:
    """Samples from sweep rows (one per decoded path: `prompt_index`, `seed`, `key`, `sample`,
    `final_score` = the judge's ORM P(yes), `correct` = the exact evaluator's verdict, `tokens`).
    `judge` labels by P(yes) ≥ threshold, `exact` by the evaluator (the oracle, for ablations)."""
    if labeller not in LABELLERS:
        raise ValueError(f"labeller must be one of {', '.join(LABELLERS)}, got {labeller!r}")
    samples = []
    for row in rows:
        value = row["final_score"] if labeller == "judge" else row["correct"]
        if value is None:
            continue  # a path that was never decoded to the end has no label
        label = value >= threshold if labeller == "judge" else value
        key = PathKey(int(row["seed"]), str(row["key"]), int(row["sample"]))
        if row.get("tokens") is None:
            raise InputError(f"sweep row of prompt {row['prompt_index']}, path {key}: decoded but without image tokens (a sweep "
                             "written before rows stored them); sample the round again in a new folder")  # fmt: skip
        samples.append(Sample(int(row["prompt_index"]), key, bool(label), tuple(row["tokens"]), row["correct"]))
    return samples


def build_pairs(samples: list[Sample], per_prompt: int = 1) -> list[Pair]:
    """Up to `per_prompt` pairs per prompt with both labels, each a distinct ("yes", "no") couple.
    Couples are taken so that every image is used as evenly as possible: with y "yes" and m "no"
    samples (by sample index), the i-th couple of diagonal d is (yes[i], no[(i + d) % m]) when y ≤ m
    (and symmetrically otherwise), so the first min(y, m) couples share no image. per_prompt = 1 is
    the paper's one pair per prompt: the first "yes" with the first "no"."""
    by_prompt: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_prompt[s.prompt_index].append(s)
    pairs = []
    for index in sorted(by_prompt):
        ordered = sorted(by_prompt[index], key=lambda s: s.key.sample)
        yes = [s for s in ordered if s.label]
        no = [s for s in ordered if not s.label]
        pairs += [Pair(index, yes[i], no[j]) for i, j in _couples(len(yes), len(no))[:per_prompt]]
    return pairs


def _couples(y: int, m: int) -> list[tuple[int, int]]:
    """Every (yes, no) index couple, diagonal by diagonal over the smaller side."""
    if y <= m:
        return [(i, (i + d) % m) for d in range(m) for i in range(y)]
    return [((j + d) % y, j) for d in range(y) for j in range(m)]


def checked_pairs(pairs: list[Pair], count: int) -> list[Pair]:
    """`count` of the pairs, spread evenly over them (all of them if there are fewer)."""
    if count >= len(pairs):
        return list(pairs)
    return [pairs[i * len(pairs) // count] for i in range(count)]


@torch.no_grad()
def replay_check(engine: StepwiseGenerator, ids: dict[int, list[int]], pairs: list[Pair]) -> dict:
    """Replay the pairs' paths from their keys and compare with the stored tokens: how many were
    replayed, how many differ, and which (prompt index, sample index, tokens that differ)."""
    samples = [s for pair in pairs for s in (pair.chosen, pair.rejected)]
    differ = []
    for start in range(0, len(samples), REPLAY_BATCH):
        batch = samples[start : start + REPLAY_BATCH]
        tokens, _ = engine.finish(engine.start([ids[s.prompt_index] for s in batch], [s.key for s in batch]))
        for sample, replayed in zip(batch, tokens.cpu()):
            changed = int((replayed != torch.tensor(sample.tokens)).sum())
            if changed:
                differ.append({"prompt_index": sample.prompt_index, "sample": sample.key.sample, "tokens_differ": changed})
    if differ:
        logger.warning("replay check: %d of %d paths replayed to other tokens than stored; the stored ones are trained on", len(differ), len(samples))
    return {"replayed": len(samples), "differ": len(differ), "paths": differ}


def pair_rows(
    policy: str, sampling: Sampling, device: str, dtype: torch.dtype, records: list[Record], rows: list[dict],
    labeller: str, threshold: float, replay: int, per_prompt: int = 1,
) -> tuple[list[dict], dict]:
    """A round's training rows: its sweep rows (`label_rows`) paired on their stored tokens, with
    reference log-probs under the policy that sampled them in `dtype` (the one it trains in, so
    training starts at zero margin); and the replay check of `replay` pairs (`replay_check`)."""
    engine, tokenizer = load_engine(policy, sampling, device)
    pairs = build_pairs(label_rows(rows, labeller, threshold), per_prompt)
    ids = {p.prompt_index: prompt_ids(tokenizer, records[p.prompt_index].prompt) for p in pairs}
    report = replay_check(engine, ids, checked_pairs(pairs, replay))
    out = []
    for pair in pairs:
        record = records[pair.prompt_index]
        out.append({
            "prompt_index": pair.prompt_index, "tag": record.tag, "prompt": record.prompt, "prompt_ids": ids[pair.prompt_index],
            "chosen_sample": pair.chosen.key.sample, "rejected_sample": pair.rejected.key.sample,
            "chosen_tokens": list(pair.chosen.tokens), "rejected_tokens": list(pair.rejected.tokens),
        })  # fmt: skip
    model = engine.model.to(dtype)
    for row, (c, rej) in zip(out, reference_logps(model, out, special_tokens(model).pad)):
        row["ref_chosen"], row["ref_rejected"] = c, rej
    return out, report
