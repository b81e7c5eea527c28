"""The bench's results as a markdown table, and the hardware line that goes with it.

Formatting only, apart from the runs: ``markdown_table`` takes the ``results`` of a run or of a
saved ``<hardware>.json`` alike.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

import lightning as L
import torch


def hardware() -> dict[str, Any]:
    """What ran the bench: CPU model, threads, GPU, library versions."""
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


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The results as one markdown table; speed-ups relative to the fp32 row at the same batch.
    A side that was not run (``None``) shows n/a."""
    fp32 = {r["batch"]: r["lightning"] or {} for r in results if r["row"] == "fp32"}
    lines = [
        "| row | batch | Lightning img/s | Lightning ms/step | plain ms/step "
        "| Lightning ÷ plain | vs fp32 | Lightning best ms/step | plain best ms/step "
        "| Lightning ÷ plain (best) | vs fp32 (best) | loader wait ms "
        "| peak MiB Lightning | peak MiB plain |",
        "|" + "---|" * 14,
    ]
    for r in results:
        a, b, base = r["lightning"] or {}, r["plain"] or {}, fp32.get(r["batch"], {})
        cells = [
            r["row"],
            str(r["batch"]),
            _fmt(a.get("images_per_s"), 2),
            _fmt(a.get("ms_per_step"), 0),
            _fmt(b.get("ms_per_step"), 0),
            _fmt(_ratio(a.get("ms_per_step"), b.get("ms_per_step")), 2),
            _fmt(_ratio(base.get("ms_per_step"), a.get("ms_per_step")), 2),
            _fmt(a.get("best_ms_per_step"), 0),
            _fmt(b.get("best_ms_per_step"), 0),
            _fmt(_ratio(a.get("best_ms_per_step"), b.get("best_ms_per_step")), 2),
            _fmt(_ratio(base.get("best_ms_per_step"), a.get("best_ms_per_step")), 2),
            _fmt(a.get("data_wait_ms")),
            _fmt(a.get("peak_mib"), 0),
            _fmt(b.get("peak_mib"), 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
