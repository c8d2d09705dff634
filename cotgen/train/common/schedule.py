"""A stage's budget (wall clock or steps) and its learning rate: linear warm-up, then a cosine decay to 10 %."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

FLOOR = 0.1
"""Share of the peak rate left at the end of the budget."""


def warmup_cosine(peak: float, step: int, warmup_steps: int, progress: float) -> float:
    """The rate at `step` (0-based) when `progress` (0 to 1) of the budget has passed (`Budget.progress`)."""
    warmup = min(1.0, (step + 1) / warmup_steps)
    return peak * warmup * (FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


@dataclass(frozen=True)
class Budget:
    """A stage's length: `steps` when above 0 (a rerun takes the same steps on any machine), else
    `minutes` of wall clock."""

    minutes: float
    steps: int = 0

    def progress(self, step: int, elapsed: float) -> float:
        """The share of the budget spent after `step` steps and `elapsed` seconds."""
        return step / self.steps if self.steps else elapsed / (self.minutes * 60)

    def done(self, step: int, elapsed: float) -> bool:
        return self.progress(step, elapsed) >= 1.0
