"""Print the results table of run.sh: the newest run of each facades experiment in LOG_DIR.

Usage: python experiments/paired_vs_unpaired/summarize.py LOG_DIR
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

METHODS = {
    "facades_pix2pix": "pix2pix",
    "facades_cyclegan": "CycleGAN",
    "facades_ugatit": "U-GAT-IT",
}


def test_row(log_dir: Path, task_name: str) -> dict[str, str] | None:
    """The test metrics row of the newest run of ``task_name`` (None before any finished)."""
    runs = sorted((log_dir / task_name / "runs").glob("*/csv/metrics.csv"))
    if not runs:
        return None
    with runs[-1].open() as f:
        return next((row for row in csv.DictReader(f) if row.get("test/L1")), None)


def main(log_dir: Path) -> None:
    print("| method | training batches | test L1 | test PSNR (dB) | test SSIM |")
    print("| --- | --- | --- | --- | --- |")
    for task_name, method in METHODS.items():
        test = test_row(log_dir, task_name)
        if test is None:
            continue
        # the loggers' step counts training batches (global_step counts both optimizers' steps)
        batches = int(test["step"])
        l1, psnr, ssim = (float(test[f"test/{k}"]) for k in ("L1", "PSNR", "SSIM"))
        print(f"| {method} | {batches} | {l1:.3f} | {psnr:.2f} | {ssim:.3f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
