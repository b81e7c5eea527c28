"""``python -m pix2pix_lit.gpu_check.probe RESULT``: the device and versions, as JSON."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from pix2pix_lit.hardware import hardware


def probe() -> dict[str, Any]:
    """:func:`~pix2pix_lit.hardware.hardware` plus Python, CUDA and the GPU's properties."""
    info = hardware() | {"python": platform.python_version(), "cuda": torch.version.cuda}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "cudnn": torch.backends.cudnn.version(),
        }
    return info


def main() -> None:
    Path(sys.argv[1]).write_text(json.dumps({"info": probe()}, indent=2))


if __name__ == "__main__":
    main()
