"""DPO training hyperparameters (one round), defaults from the paper."""

from __future__ import annotations

from dataclasses import dataclass

from cotgen.errors import InputError


@dataclass
class TrainConfig:
    beta: float = 0.1
    """DPO temperature β: how far the policy may move from the reference (the paper: 0.1)."""
    lr: float = 1e-5
    """AdamW learning rate, constant (the paper: 1e-5)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    epochs: int = 1
    """Passes over a round's pairs (the paper: 1)."""
    batch_size: int = 8
    """Pairs per optimizer step, over all workers (micro_batch × workers × accumulation)."""
    micro_batch: int = 4
    """Pairs per forward pass on one worker."""
    max_grad_norm: float = 1.0
    """Gradient clipping (0: none)."""
    checkpoint_every: int = 0
    """Optimizer steps between resumable checkpoints within a round (0: only at the round's end)."""
    seed: int = 0
    """Shuffles the pairs (each epoch, each round)."""

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.lr <= 0:
            raise InputError(f"beta and lr: must be positive, got beta={self.beta}, lr={self.lr}")
        for name in ("epochs", "batch_size", "micro_batch"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.batch_size % self.micro_batch:
            raise InputError(f"batch_size: must be a multiple of micro_batch={self.micro_batch}, got {self.batch_size}")
        for name in ("weight_decay", "max_grad_norm", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise InputError(f"{name}: must not be negative, got {getattr(self, name)}")

    def accumulation(self, workers: int) -> int:
        """Micro-batches each worker accumulates per optimizer step."""
        if self.batch_size % (self.micro_batch * workers):
            raise InputError(f"batch_size: {self.batch_size} pairs do not split into micro_batch={self.micro_batch} on {workers} workers")
        return self.batch_size // (self.micro_batch * workers)
