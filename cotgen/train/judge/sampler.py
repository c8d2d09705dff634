"""Training batches in which the question's text alone predicts nothing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from cotgen.train.judge.examples import ANSWERS, Example, ExampleSet


class BalancedSampler:
    """Draws (set, example) pairs so that the question's text alone predicts nothing: a set by
    weight, then a (task, tag) stratum uniformly, then "yes" or "no" with equal chance, then an
    example of that stratum and answer uniformly. (Left to the data's own mix, the judge first
    learns that single-object prompts are usually drawn right and position prompts wrong, and
    stays there.) A stratum with one answer only draws from what it has. `tag_weights` draws the
    strata of a tag that many times as often (tags it does not name weigh 1)."""

    def __init__(self, groups: Sequence[tuple[ExampleSet, float]], rng: np.random.Generator, tag_weights: Mapping[str, float] | None = None):
        self.groups = [(s, w) for s, w in groups if len(s) and w > 0]
        if not self.groups:
            raise ValueError("no examples to sample from")
        weights = np.array([w for _, w in self.groups], dtype=float)
        self.weights = weights / weights.sum()
        self.strata: list[list[list[list[int]]]] = []  # group -> (task, tag) -> answer -> example indices
        self.stratum_p: list[np.ndarray | None] = []  # group -> (task, tag) -> probability (None: uniform)
        for s, _ in self.groups:
            by_key: dict[tuple[str, str, str], list[int]] = defaultdict(list)
            for i, e in enumerate(s.examples):
                by_key[(e.task, e.tag, e.answer)].append(i)
            strata = sorted({(task, tag) for task, tag, _ in by_key})
            self.strata.append([[by_key[(*k, a)] for a in ANSWERS if by_key[(*k, a)]] for k in strata])
            self.stratum_p.append(tag_probabilities([tag for _, tag in strata], tag_weights) if tag_weights else None)
        self.rng = rng

    def draw(self, n: int) -> list[tuple[ExampleSet, Example]]:
        out = []
        for g in self.rng.choice(len(self.groups), size=n, p=self.weights):
            strata = self.strata[g]
            p = self.stratum_p[g]  # uniform draws as before weights existed, so earlier runs' batches stay the same
            pools = strata[int(self.rng.integers(len(strata)) if p is None else self.rng.choice(len(strata), p=p))]
            pool = pools[int(self.rng.integers(len(pools)))]
            out.append((self.groups[g][0], self.groups[g][0].examples[pool[int(self.rng.integers(len(pool)))]]))
        return out


def tag_probabilities(tags: Sequence[str], tag_weights: Mapping[str, float]) -> np.ndarray:
    """Each stratum's chance, by its tag's weight (1 for a tag not named)."""
    w = np.array([tag_weights.get(tag, 1.0) for tag in tags])
    return w / w.sum()
