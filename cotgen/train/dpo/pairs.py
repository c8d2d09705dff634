"""Preference pairs as in the paper: per prompt, K labelled samples of the current policy; one "yes"
image paired with one "no"; prompts whose samples all got the same label are dropped.

A sample is identified by its path key: the engine reproduces a path's image tokens exactly from
its key and sampling settings, so the sampling step (the sweep) needs to keep only keys and labels,
and the tokens of the two images of each pair are regenerated here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from cotgen.evaluate.exact import evaluate_image
from cotgen.generate.engine import PathKey, StepwiseGenerator
from cotgen.generate.factory import load_engine, prompt_ids
from cotgen.generate.sampling import Sampling
from cotgen.models.janus import special_tokens
from cotgen.prompts import Record
from cotgen.train.dpo.config import LABELLERS
from cotgen.train.dpo.loss import reference_logps


@dataclass(frozen=True)
class Sample:
    prompt_index: int
    key: PathKey
    label: bool
    """The labeller's verdict: does the image match its prompt?"""
    correct: bool | None = None
    """The exact evaluator's verdict, when known (checked again after regeneration)."""


@dataclass(frozen=True)
class Pair:
    prompt_index: int
    chosen: Sample
    rejected: Sample


def label_rows(rows: list[dict], labeller: str, threshold: float = 0.5) -> list[Sample]:
    """Samples from sweep rows (one per decoded path: `prompt_index`, `seed`, `key`, `sample`,
    `final_score` = the judge's ORM P(yes), `correct` = the exact evaluator's verdict).
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
        samples.append(Sample(int(row["prompt_index"]), key, bool(label), row["correct"]))
    return samples


def build_pairs(samples: list[Sample]) -> list[Pair]:
    """One pair per prompt with both labels: its first "yes" and first "no" sample (by sample index)."""
    by_prompt: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_prompt[s.prompt_index].append(s)
    pairs = []
    for index in sorted(by_prompt):
        ordered = sorted(by_prompt[index], key=lambda s: s.key.sample)
        yes = next((s for s in ordered if s.label), None)
        no = next((s for s in ordered if not s.label), None)
        if yes and no:
            pairs.append(Pair(index, yes, no))
    return pairs


@torch.no_grad()
def regenerate(engine: StepwiseGenerator, prompt_ids: list[int], record: Record, pair: Pair) -> tuple[torch.Tensor, torch.Tensor]:
    """The image tokens of a pair's chosen and rejected paths, replayed from their keys. Where the
    exact verdict is known, the replayed image must get it again: a different verdict means the
    sampling settings differ from the sweep's, and the pair would train on other images."""
    tokens, images = engine.finish(engine.start([prompt_ids] * 2, [pair.chosen.key, pair.rejected.key]))
    for sample, image in zip((pair.chosen, pair.rejected), images):
        if sample.correct is not None and evaluate_image(image, record).correct != sample.correct:
            raise ValueError(f"path {sample.key} did not replay to the sampled image: are the sampling settings the sweep's?")
    return tokens[0].cpu(), tokens[1].cpu()


def pair_rows(
    policy: str, sampling: Sampling, device: str, records: list[Record], rows: list[dict], labeller: str, threshold: float
) -> list[dict]:
    """A round's training rows: its sweep rows (`label_rows`) paired, each pair's tokens replayed by
    the policy that sampled them, and their reference log-probs under that policy."""
    engine, tokenizer = load_engine(policy, sampling, device)
    out = []
    for pair in build_pairs(label_rows(rows, labeller, threshold)):
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
