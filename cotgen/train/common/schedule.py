"""A stage's budget (wall clock or steps) and its learning rate: linear warm-up, then a cosine decay to 10 %."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # configs import Budget; only the training loop needs torch
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
    """A stage's length: `minutes` of wall clock, and at most `steps` steps when above 0 (then a run
    stopped by its steps takes the same steps on any machine). Whichever ends first ends the stage."""

    minutes: float
    steps: int = 0

    def progress(self, step: int, elapsed: float) -> float:
        """The share of the budget spent after `step` steps and `elapsed` seconds (the larger share)."""
        clock = elapsed / (self.minutes * 60) if self.minutes > 0 else 1.0
        return max(clock, step / self.steps if self.steps else 0.0)

    def done(self, step: int, elapsed: float) -> bool:
        return self.progress(step, elapsed) >= 1.0
