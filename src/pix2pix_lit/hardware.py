"""What a measurement ran on: CPU, threads, GPU and library versions (for the bench's tables
and ``make gpu-check``'s)."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

import lightning as L
import torch


def hardware() -> dict[str, Any]:
    """CPU model, core and torch thread counts, GPU name, torch and Lightning versions, and a
    file-name slug (``nvidia-h200``, ``cpu-2core``)."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        cpu = match.group(1).strip() if match else cpu
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    info["slug"] = (
        re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-")
        if info["gpu"]
        else f"cpu-{info['cpu_count']}core"
    )
    return info
