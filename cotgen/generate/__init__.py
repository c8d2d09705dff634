"""Step-wise decoding: CFG, KV cache, previews, prune and branch, reproducible seeding.

Names are imported on first use (PEP 562), so `cotgen.generate.sampling` loads without torch."""

import importlib

_HOMES = {
    "PathKey": "engine", "State": "engine", "StepwiseGenerator": "engine",
    "load_engine": "factory", "prompt_ids": "factory", "Sampling": "sampling",
}  # fmt: skip
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
