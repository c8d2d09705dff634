"""How a generator samples: the one spelling of the sampling settings, for the engine and for every
config (sweeps, DPO, Serve, the CLI). Importable without torch, so configs load fast."""

from __future__ import annotations

from dataclasses import dataclass

from cotgen.errors import InputError


@dataclass(frozen=True)
class Sampling:
    guidance: float | None = None
    """Classifier-free guidance scale; 1.0 means no guidance; None: the checkpoint's own (else 5, as Janus)."""
    temperature: float = 1.0
    """Softmax temperature; 0 decodes greedily."""
    top_k: int = 0
    """Sample from the k most likely tokens; 0 keeps the full distribution."""
    steps: int = 4
    """Checkpoint steps per image: the token grid's rows are split into this many groups, at whose
    ends the judge may look."""

    def __post_init__(self) -> None:
        if self.guidance is not None and self.guidance < 1.0:
            raise InputError(f"guidance: must be at least 1.0, got {self.guidance}")
        if self.temperature < 0:
            raise InputError(f"temperature: must not be negative, got {self.temperature}")
        if self.top_k < 0:
            raise InputError(f"top_k: must not be negative, got {self.top_k}")
        if self.steps < 1:
            raise InputError(f"steps: must be at least 1, got {self.steps}")
