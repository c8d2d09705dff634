"""One line naming the machine a figure was measured on."""

from __future__ import annotations

import os
import platform


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
