"""Start-up scan benchmark: seconds of PairedImageDataModule.setup("fit") on a generated folder of
A|B JPEGs, first start (empty scan cache) and second start (cache filled).

    python experiments/data_scan/scan_benchmark.py /work/runs/data/scan20k --count 20000

Generates the images once (512x256 A|B JPEGs, edges2shoes' size) under the given folder, which
must be outside the repository. Not a test: the numbers go to this folder's README.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pix2pix_lit.data import PairedImageDataModule


def generate(root: Path, count: int) -> None:
    train = root / "train"
    if train.is_dir() and len(list(train.iterdir())) == count:
        return
    train.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:512]
    for index in range(count):
        # smooth gradients with light noise: JPEGs of realistic size (~20 KB), not noise (~150 KB)
        base = (x * rng.uniform(0.2, 0.5) + y * rng.uniform(0.2, 0.5)) % 256
        image = np.stack([base, base[::-1], 255 - base], axis=-1)
        image += rng.normal(0, 4, image.shape)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(train / f"{index:06d}.jpg")
    (root / "val").mkdir(exist_ok=True)
    shutil.copy(train / "000000.jpg", root / "val" / "000000.jpg")


def timed_setup(root: Path, cache: Path, workers: int | None) -> float:
    module = PairedImageDataModule(root, num_workers=0, scan_cache=cache, scan_workers=workers)
    start = time.perf_counter()
    module.setup("fit")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 0])
    args = parser.parse_args()
    generate(args.root, args.count)
    results = {}
    for workers in args.workers:
        cache = args.root.parent / f"{args.root.name}-cache-{workers}"
        shutil.rmtree(cache, ignore_errors=True)
        first = timed_setup(args.root, cache, workers or None)
        second = timed_setup(args.root, cache, workers or None)
        name = f"workers={workers or 'default'}"
        results[name] = {
            "first_s": round(first, 2),
            "files_per_s": round((args.count + 1) / first),
            "second_s": round(second, 3),
        }
        print(name, results[name], flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
