"""Package attributes imported on first use (PEP 562): a package can re-export its heavy classes
while its light modules (configs, names) still load without torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_attributes(package: str, homes: dict[str, str]) -> Callable[[str], object]:
    """A module-level `__getattr__` for `package` that imports `name` from `package.homes[name]`."""

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    return __getattr__
