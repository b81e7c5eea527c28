"""The start-up scan: parallel reads, and a cache keyed by file size and mtime that makes the
second start read nothing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import small_paired_module
from pix2pix_lit.data import scan as scan_module
from pix2pix_lit.data.scan import scan_images


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        path = tmp_path / "imgs" / f"{i:02d}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 24 + i, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, bool]]:
    """Every file the scan opens, with whether it decoded it."""
    calls: list[tuple[Path, bool]] = []
    real = scan_module.image_size

    def counting(path: Path, decode: bool = False) -> tuple[int, int]:
        calls.append((path, decode))
        return real(path, decode)

    monkeypatch.setattr(scan_module, "image_size", counting)
    return calls


def test_second_scan_reads_nothing_and_a_changed_file_is_read_again(
    images: list[Path], reads: list, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = scan_images(images, cache_dir=cache, workers=3)
    assert len(reads) == 12 and all(decode for _, decode in reads)
    assert first.sizes[images[5]] == (29, 16) and not first.unreadable
    reads.clear()
    second = scan_images(images, cache_dir=cache)
    assert reads == [] and second == first
    # same size, new mtime: read again; a truncated rewrite is caught
    os.utime(images[3], ns=(0, 1_000_000_000))
    data = images[7].read_bytes()
    images[7].write_bytes(data[: len(data) // 2])
    third = scan_images(images, cache_dir=cache)
    assert sorted(p.name for p, _ in reads) == ["03.jpg", "07.jpg"]
    assert images[7] in third.unreadable and images[3] in third.sizes


def test_header_only_results_do_not_stand_in_for_a_decoding_scan(
    images: list[Path], reads: list, tmp_path: Path
) -> None:
    scan_images(images, decode=False, cache_dir=tmp_path / "cache")
    reads.clear()
    scan_images(images, decode=True, cache_dir=tmp_path / "cache")
    assert len(reads) == 12
    reads.clear()
    scan_images(images, decode=False, cache_dir=tmp_path / "cache")
    assert reads == []  # a decoded result answers a header-only scan


def test_a_damaged_cache_is_rebuilt(images: list[Path], reads: list, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    scan_images(images, cache_dir=cache)
    for file in cache.iterdir():
        file.write_text("{not json")
    reads.clear()
    assert len(scan_images(images, cache_dir=cache).sizes) == 12 and len(reads) == 12


def test_the_data_module_uses_the_cache(synthetic_root: Path, reads: list, tmp_path: Path) -> None:
    for _ in range(2):
        module = small_paired_module(synthetic_root, scan_cache=tmp_path / "cache")
        module.setup("fit")
    assert len(reads) == 12  # 8 train + 4 val files, read by the first start only


def test_each_cache_file_is_read_once_per_scan(
    images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan_images(images, cache_dir=tmp_path / "cache")
    loads = []
    real = scan_module.ScanCache.__init__

    def counting(self, cache_dir, folder) -> None:
        loads.append(folder)
        real(self, cache_dir, folder)

    monkeypatch.setattr(scan_module.ScanCache, "__init__", counting)
    scan_images(images, cache_dir=tmp_path / "cache")
    assert len(loads) == 1  # not once per file: that made a 20k-file second start minutes long
