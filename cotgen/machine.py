"""One line naming the machine a figure was measured on, and what benchmarks time with."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def describe_machine() -> str:
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    try:
        import torch

        accelerator = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        accelerator += f", torch {torch.__version__}"
    except ImportError:
        accelerator = "torch not installed"
    return f"{cpu}, {os.cpu_count()} cores, {accelerator}, python {platform.python_version()}"


def seconds_on(device: str, fn: Callable[[], object]) -> float:
    """Wall-clock seconds `fn()` takes, a GPU's queued work waited for before and after (benchmarks)."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


@contextmanager
def default_dtype(dtype) -> Iterator[None]:
    """torch's default dtype set to `dtype` while it lasts: a random model built in bf16 from the start."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)
