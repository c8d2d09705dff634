"""Watching a verification run as it happens: each checkpoint step's previews and judge scores, and a
way to stop it. Ray-free; the server streams these as partial images and stops a request whose client
went away."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from PIL import Image


class Cancelled(Exception):
    """The watcher asked the run to stop; raised between two decoding steps."""


@dataclass(frozen=True)
class Checkpoint:
    """The live paths of one round after a checkpoint step."""

    round: int
    """0-based; PARM++ regenerates in later rounds, every other strategy has one."""
    step: int
    """1-based checkpoint step; `steps` is the finished image."""
    steps: int
    candidates: int
    """Paths this round started with."""
    paths: list[int]
    """Trace index of each live path, one per preview."""
    previews: list[Image.Image]
    scores: list[float | None]
    """The judge's view of each live path at this step, None where it has none: PRM's score of the
    prompt question; PARM's potential of a path once clear, else its clarity at this step."""
    pruned: list[tuple[int, str]]
    """(trace index, reason) of the paths dropped at this step."""

    def leader(self) -> int:
        """Position (in `paths`) of the path the strategy favours now: the best scored of those not
        pruned, else the first not pruned (the first if all were)."""
        dropped = {path for path, _ in self.pruned}
        kept = [i for i, path in enumerate(self.paths) if path not in dropped] or [0]
        scored = [i for i in kept if self.scores[i] is not None]
        return max(scored, key=lambda i: self.scores[i]) if scored else kept[0]


class Watcher(Protocol):
    def wants(self, round: int, step: int) -> bool:
        """Whether `checkpoint` should be called for this step of this round (a checkpoint's previews
        cost a decode of every live path)."""

    def checkpoint(self, event: Checkpoint) -> None:
        """Called after each checkpoint step of each round, from the thread that runs the strategy."""

    def cancelled(self) -> bool:
        """True once the run should stop; checked before each decoding step."""
