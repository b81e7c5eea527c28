"""The start-up scan: every image's size, read in parallel and remembered between starts.

Decoding every file once before training finds truncated or corrupt images by name instead of
mid-epoch, but for a large dataset (edges2shoes: ~50k pairs) it takes minutes. So files are
read by a pool of threads (Pillow releases the GIL while it decodes), with a progress bar, and
the result of each file is cached under its size and modification time: a second start with
unchanged files reads nothing. ``experiments/data_scan/README.md`` has the measured rates.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from pix2pix_lit.data.io import image_size
from pix2pix_lit.errors import DataError

# Scans of fewer files finish before a bar would be worth drawing.
_PROGRESS_MIN_FILES = 500
_CACHE_VERSION = 1


@dataclass(frozen=True)
class ScanResult:
    """``sizes``: ``(width, height)`` of every readable file; ``unreadable``: the reason for
    every other one."""

    sizes: dict[Path, tuple[int, int]]
    unreadable: dict[Path, str]


def default_workers() -> int:
    # Threads mostly wait on the disk or sit in the decoder without the GIL: a few per core.
    return min(32, 2 * (os.cpu_count() or 1))


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _read(path: Path, decode: bool) -> tuple[tuple[int, int] | None, str | None]:
    try:
        return image_size(path, decode=decode), None
    except DataError as err:
        return None, str(err.__cause__ or err) or "unreadable"


class ScanCache:
    """Scan results of one folder's files in a JSON file under ``cache_dir``, keyed by each
    file's path, size and modification time (a changed or replaced file is read again).

    A header-only result (``decode=False``) is not reused by a decoding scan. The file is
    replaced atomically, so an interrupted write leaves the previous cache.
    """

    def __init__(self, cache_dir: str | Path, folder: Path) -> None:
        key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
        self.path = Path(cache_dir) / f"{folder.name}-{key}.json"
        self.entries: dict[str, list] = {}
        try:
            stored = json.loads(self.path.read_text())
            if stored.get("version") == _CACHE_VERSION:
                self.entries = stored["files"]
        except (OSError, ValueError, KeyError, AttributeError):
            self.entries = {}  # missing or damaged: scan everything again

    def get(
        self, path: Path, stamp: tuple[int, int], decode: bool
    ) -> tuple[tuple[int, int] | None, str | None] | None:
        entry = self.entries.get(str(path))
        if entry is None or tuple(entry[:2]) != stamp or (decode and not entry[2]):
            return None
        size, error = entry[3], entry[4]
        return (tuple(size) if size else None), error

    def put(
        self,
        path: Path,
        stamp: tuple[int, int],
        decode: bool,
        result: tuple[tuple[int, int] | None, str | None],
    ) -> None:
        size, error = result
        self.entries[str(path)] = [*stamp, decode, list(size) if size else None, error]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"version": _CACHE_VERSION, "files": self.entries})
        with tempfile.NamedTemporaryFile(
            "w", dir=self.path.parent, prefix=f".{self.path.name}.", delete=False
        ) as tmp:
            tmp.write(payload)
        os.replace(tmp.name, self.path)


def scan_images(
    paths: Sequence[Path],
    *,
    decode: bool = True,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    desc: str = "scanning images",
) -> ScanResult:
    """The size of every file of ``paths`` (reading whole files when ``decode``).

    ``cache_dir`` keeps the results between calls (one cache file per folder of the files);
    ``workers`` threads read the files (default :func:`default_workers`).
    """
    results: dict[Path, tuple[tuple[int, int] | None, str | None]] = {}
    caches: dict[Path, ScanCache] = {}
    pending: list[tuple[Path, tuple[int, int], ScanCache | None]] = []
    for path in paths:
        try:
            stamp = _stamp(path)
        except OSError as err:
            results[path] = (None, str(err))
            continue
        cache = None
        if cache_dir is not None:
            if path.parent not in caches:
                caches[path.parent] = ScanCache(cache_dir, path.parent)
            cache = caches[path.parent]
            hit = cache.get(path, stamp, decode)
            if hit is not None:
                results[path] = hit
                continue
        pending.append((path, stamp, cache))
    if pending:
        with (
            ThreadPoolExecutor(workers or default_workers()) as pool,
            tqdm(
                total=len(pending),
                desc=desc,
                unit="img",
                disable=len(pending) < _PROGRESS_MIN_FILES,
            ) as progress,
        ):
            for (path, stamp, cache), result in zip(
                pending, pool.map(lambda item: _read(item[0], decode), pending), strict=True
            ):
                results[path] = result
                if cache is not None:
                    cache.put(path, stamp, decode, result)
                progress.update()
        for cache in {id(c): c for _, _, c in pending if c is not None}.values():
            # A read-only cache folder only costs the next start a full scan.
            with contextlib.suppress(OSError):
                cache.save()
    return ScanResult(
        {p: size for p, (size, _) in results.items() if size is not None},
        {p: error for p, (size, error) in results.items() if size is None and error},
    )
