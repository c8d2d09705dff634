"""How well the judge answers: balanced accuracy, pooled and per tag."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from cotgen.prompts import TAGS
from cotgen.train.judge.examples import Example


def balanced_accuracy(p_yes: Sequence[float], answers: Sequence[str], threshold: float = 0.5) -> dict:
    """n, positives, true-positive and true-negative rates and their mean (None where undefined)."""
    said = np.asarray(p_yes) >= threshold
    truth = np.asarray([a == "yes" for a in answers])
    tpr = float(said[truth].mean()) if truth.any() else None
    tnr = float((~said[~truth]).mean()) if (~truth).any() else None
    rates = [r for r in (tpr, tnr) if r is not None]
    return {
        "n": len(truth), "positives": int(truth.sum()), "tpr": tpr, "tnr": tnr,
        "balanced": float(np.mean(rates)) if rates else None, "accuracy": float((said == truth).mean()) if len(truth) else None,
    }  # fmt: skip


def rates(pairs: list[tuple[float, Example]]) -> dict:
    """Balanced accuracy (P(yes) ≥ 0.5) overall, per tag and averaged over tags."""
    result = {"overall": balanced_accuracy([p for p, _ in pairs], [e.answer for _, e in pairs])}
    by_tag = defaultdict(list)
    for p, e in pairs:
        by_tag[e.tag].append((p, e.answer))
    for tag in TAGS:
        if by_tag[tag]:
            result[tag] = balanced_accuracy(*zip(*by_tag[tag]))
    result["tag_mean"] = tag_mean(result)
    return result


def tag_mean(result: dict) -> float | None:
    """Mean balanced accuracy of the tags that have both answers. Unlike the pooled figure it gains
    nothing from knowing which tags the generator usually gets right (the prompt's text alone)."""
    means = [result[t]["balanced"] for t in TAGS if t in result and result[t]["tpr"] is not None and result[t]["tnr"] is not None]
    return float(np.mean(means)) if means else None
