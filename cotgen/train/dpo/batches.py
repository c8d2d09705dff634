"""Which pairs each worker trains on at each optimizer step of a round."""

from __future__ import annotations

import numpy as np

from cotgen.train.dpo.config import DPOTrainConfig


def step_batches(num_pairs: int, train: DPOTrainConfig, workers: int, rank: int, seed: int) -> list[list[list[int]]]:
    """Per optimizer step, this rank's micro-batches (pair indices): each epoch a seeded shuffle, cut
    into whole steps of `batch_size` pairs (a remainder smaller than a step is left out)."""
    steps = []
    for epoch in range(train.epochs):
        order = np.random.default_rng([train.seed, seed, epoch]).permutation(num_pairs)
        for start in range(0, num_pairs - train.batch_size + 1, train.batch_size):
            mine = order[start : start + train.batch_size][rank::workers]
            steps.append([mine[i : i + train.micro_batch].tolist() for i in range(0, len(mine), train.micro_batch)])
    return steps
