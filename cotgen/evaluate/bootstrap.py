"""95 % bootstrap intervals of GenEval overall (the mean of the tag means) over prompts resampled
with replacement, alone or paired: two methods scored on the same prompts (and the same path keys)
share each resample, so the interval of their difference leaves out the prompts' own spread."""

from __future__ import annotations

import numpy as np

NAN_CI = (float("nan"), float("nan"))


def bootstrap_ci(tags: np.ndarray, correct: np.ndarray, resamples: int, seed: int = 0) -> tuple[float, float]:
    """95 % interval of GenEval overall over prompts resampled with replacement (NaN for 0 resamples)."""
    if resamples == 0:
        return NAN_CI
    overall = _resampled_overall(tags, correct, _picks(len(tags), resamples, seed))
    return float(np.percentile(overall, 2.5)), float(np.percentile(overall, 97.5))


def paired_difference_ci(tags: np.ndarray, mine: np.ndarray, theirs: np.ndarray, resamples: int, seed: int = 0) -> tuple[float, float]:
    """95 % interval of overall(mine) − overall(theirs), verdicts of the same prompts in the same order."""
    if resamples == 0:
        return NAN_CI
    picks = _picks(len(tags), resamples, seed)
    deltas = _resampled_overall(tags, mine, picks) - _resampled_overall(tags, theirs, picks)
    return float(np.percentile(deltas, 2.5)), float(np.percentile(deltas, 97.5))


def _resampled_overall(tags: np.ndarray, correct: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """GenEval overall of each resample, a row of prompt indices in `picks`; a tag that a resample
    misses is left out of its mean."""
    means = []
    for tag in dict.fromkeys(tags):
        hit = tags[picks] == tag
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append((correct[picks] & hit).sum(axis=1) / hit.sum(axis=1))
    return np.nanmean(np.stack(means), axis=0)


def _picks(prompts: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, prompts, (resamples, prompts))
