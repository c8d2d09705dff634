"""Step-wise decoding: CFG, KV cache, previews, prune and branch, reproducible seeding.

Names load on first use, so `cotgen.generate.sampling` imports without torch."""

from cotgen.lazy import lazy_attributes

_HOMES = {
    "PathKey": "engine", "State": "engine", "StepwiseGenerator": "engine",
    "load_engine": "factory", "prompt_ids": "factory", "Sampling": "sampling",
}  # fmt: skip
__getattr__ = lazy_attributes(__name__, _HOMES)
