"""How far OpenCV's resize filters land from the reference's PIL bicubic on the facades halves.

For every A|B image of a split, each half (photo and label map) is shrunk from 256 to ``size``
with PIL bicubic (the reference pipeline) and with each OpenCV filter; the table gives, per
filter and half, the mean absolute difference in grey levels and the PSNR against PIL, over
all pixels of the split.

Usage (from the repository root)::

    PYTHONPATH=src python experiments/parity/resize_filters.py --split train --size 143
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_loop import RESIZES, split_halves

from pix2pix_lit.data.io import list_images


def differences(root: Path, size: int) -> dict[tuple[str, str], tuple[float, float]]:
    """(filter, half) → (mean |difference| in grey levels, PSNR in dB) against PIL bicubic."""
    errors: dict[tuple[str, str], list[float]] = {}
    for path in list_images(root):
        labels, photo = split_halves(path, "BtoA")
        for half, image in (("photo", photo), ("labels", labels)):
            reference = np.asarray(RESIZES["pil"](image, size), dtype=np.float64)
            for name in sorted(RESIZES):
                if name == "pil":
                    continue
                diff = np.asarray(RESIZES[name](image, size), dtype=np.float64) - reference
                sums = errors.setdefault((name, half), [0.0, 0.0, 0.0])
                sums[0] += np.abs(diff).sum()
                sums[1] += (diff**2).sum()
                sums[2] += diff.size
    return {
        key: (abs_sum / n, 10 * math.log10(255**2 / (sq_sum / n)))
        for key, (abs_sum, sq_sum, n) in errors.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/facades"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--size", type=int, default=143)
    args = parser.parse_args()
    print(f"| filter | half | 256 → {args.size}: mean abs. diff. (levels) | PSNR vs PIL (dB) |")
    print("| --- | --- | --- | --- |")
    for (name, half), (mad, psnr) in differences(args.data / args.split, args.size).items():
        print(f"| {name} | {half} | {mad:.2f} | {psnr:.1f} |")


if __name__ == "__main__":
    main()
