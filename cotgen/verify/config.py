"""What a verification run is asked to do: the strategy names and `VerifyConfig`, importable
without torch (the CLI's parser and every config loader read them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cotgen.errors import InputError
from cotgen.judge.prompts import JudgePrompts

STRATEGIES = ("baseline", "orm", "prm", "parm", "parm++")
STEPWISE = ("prm", "parm", "parm++")
"""The strategies that judge previews at checkpoint steps before the final image."""
PRM_AGGREGATES = ("min", "mean", "last")
CORRECTORS = ("feedback", "resample")


def check_steps(strategy: str, steps: int) -> None:
    """Refuse a step-wise strategy with fewer than 2 checkpoint steps: with one, the only checkpoint
    is the final image, so nothing is judged along the way (PARM would return path 0 at N× the cost)."""
    if strategy in STEPWISE and steps < 2:
        raise InputError(f"steps: {strategy} judges the image step by step and needs at least 2 checkpoint steps, got {steps}")


@dataclass(frozen=True)
class VerifyConfig:
    strategy: str = "parm"
    """baseline | orm | prm | parm | parm++"""
    n: int = 20
    """Candidate paths per prompt (per round for parm++)."""
    threshold: float = 0.5
    """P(yes) at or above which the judge's answer counts as "yes" (clarity, and alignment in parm++)."""
    clarity_threshold: float | None = None
    """parm: clarity's own threshold (None: `threshold`). 0 calls every path clear at the first step
    without asking, so potential is asked of all of them there, where pruning saves the most."""
    potential_threshold: float = 0.5
    """parm prunes a path whose potential P(yes) is below this: raise it to prune more and decode less."""
    keep: int = 0
    """parm: at most this many paths live on past their potential question, the most hopeful first
    (0: no cap). Unlike the threshold, the cap ranks paths within the prompt: it bounds the tokens and
    never prunes a hard prompt's every path (`cotgen.verify.pruning`)."""
    prm_aggregate: str = "min"
    """How prm folds a path's step scores into one: min | mean | last."""
    beam: int = 0
    """prm only: keep this many paths at each step and branch them (0 = best-of-N)."""
    max_rounds: int = 3
    """parm++: reflection rounds at most, the first generation included."""
    corrector: str = "feedback"
    """parm++: how a rejected image is regenerated. `feedback`: new paths of the corrective prompt,
    the prompt followed by the judge's reasons (the embedded generator is trained on it; a real
    checkpoint without a corrector reads it as text); `resample`: new paths of the bare prompt."""
    prompts: JudgePrompts = field(default_factory=JudgePrompts)

    @property
    def clear_at(self) -> float:
        """P(yes) of clarity at or above which a step counts as clear."""
        return self.threshold if self.clarity_threshold is None else self.clarity_threshold

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InputError(f"strategy: {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.n < 1:
            raise InputError(f"n: must be at least 1, got {self.n}")
        for name in ("threshold", "clarity_threshold", "potential_threshold"):
            if getattr(self, name) is not None and not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name}: must be within [0, 1], got {getattr(self, name)}")
        if self.keep < 0:
            raise InputError(f"keep: must be 0 (no cap) or a number of paths, got {self.keep}")
        if self.prm_aggregate not in PRM_AGGREGATES:
            raise InputError(f"prm_aggregate: {self.prm_aggregate!r} is not one of {', '.join(PRM_AGGREGATES)}")
        if self.beam < 0 or (self.beam and self.n % self.beam):
            raise InputError(f"beam: must be 0 or divide n={self.n}, got {self.beam}")
        if self.max_rounds < 1:
            raise InputError(f"max_rounds: must be at least 1, got {self.max_rounds}")
        if self.corrector not in CORRECTORS:
            raise InputError(f"corrector: {self.corrector!r} is not one of {', '.join(CORRECTORS)}")
