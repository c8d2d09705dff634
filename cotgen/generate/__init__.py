"""Step-wise decoding: CFG, KV cache, previews, prune and branch, reproducible seeding."""

from cotgen.generate.engine import PathKey, Sampling, State, StepwiseGenerator

__all__ = ["PathKey", "Sampling", "State", "StepwiseGenerator"]
