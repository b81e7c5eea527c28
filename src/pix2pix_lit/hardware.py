"""What a machine is: CPU, threads, GPU and library versions (for the bench's tables and
``make gpu-check``'s), and which mixed precision it computes natively (for ``perf=fast``)."""

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


def computes_bf16_natively(accelerator: str = "auto") -> bool:
    """Whether ``accelerator`` (Lightning's name; ``auto`` picks CUDA when present) runs bf16
    kernels in hardware: a CUDA GPU of the Ampere generation or later, or a CPU whose oneDNN
    has bf16 kernels (AVX512-BF16 or AMX)."""
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    # Without those instructions (e.g. AVX2-only Zen 3), oneDNN emulates bf16: measured here
    # at 18x the fp32 step (experiments/throughput/README.md, "bf16 on a CPU without it").
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def native_mixed_precision(accelerator: str = "auto") -> str:
    """``bf16-mixed`` where :func:`computes_bf16_natively`, else ``32-true``: the precision of
    ``perf=fast``, which must not make a run slower."""
    return "bf16-mixed" if computes_bf16_natively(accelerator) else "32-true"


def slow_precision_warning(precision: str, accelerator: str) -> str | None:
    """One line when ``trainer.precision`` asks for bf16 on a device that only emulates it."""
    if "bf16" not in str(precision) or computes_bf16_natively(accelerator):
        return None
    return (
        f"trainer.precision={precision} on a device without native bf16 ({accelerator}: "
        "bf16 is emulated, many times slower than fp32); pass trainer.precision=32-true, "
        "or perf=fast, which picks the precision the hardware computes natively"
    )
