"""The learning rate of a wall-clock budget: linear warm-up, then a cosine decay to 10 %."""

from __future__ import annotations

import math

import torch

FLOOR = 0.1
"""Share of the peak rate left at the end of the budget."""


def warmup_cosine(peak: float, step: int, warmup_steps: int, progress: float) -> float:
    """The rate at `step` (0-based) when `progress` (0 to 1) of the budget has passed. The decay
    follows time, not steps: a run's length is its minutes."""
    warmup = min(1.0, (step + 1) / warmup_steps)
    return peak * warmup * (FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
