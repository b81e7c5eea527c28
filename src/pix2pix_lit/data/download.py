"""Fetching a dataset archive: download, checksum, safe extraction and placement at its root."""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from filelock import FileLock
from tqdm.auto import tqdm

from pix2pix_lit.data.io import list_images
from pix2pix_lit.errors import DataError

URL_SCHEMES: tuple[str, ...] = ("http", "https", "file")
_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60


def download_file(url: str, dest: str | Path, sha256: str | None = None) -> Path:
    """Download ``url`` to ``dest`` with a progress bar and return ``dest``.

    The bytes go to ``dest.part`` first and are renamed only once complete and (when ``sha256``
    is given) verified, so an interrupted or corrupt download never looks like a finished one.
    """
    scheme = urlparse(url).scheme
    if scheme not in URL_SCHEMES:
        raise DataError(
            f"data.url={url!r} has unsupported scheme {scheme!r}; use http://, https:// or file://"
        )
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, partial.open("wb") as out:
            length = response.headers.get("Content-Length")
            with tqdm(
                total=int(length) if length else None,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"downloading {dest.name}",
            ) as progress:
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.update(len(chunk))
    except OSError as err:
        partial.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise DataError(
            f"could not download data.url={url}: {reason}; check the URL, or download and "
            "extract the archive yourself and point data.root at it"
        ) from err
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        partial.unlink()
        raise DataError(
            f"sha256 of {url} is {digest.hexdigest()} but data.sha256={sha256}; the download is "
            "corrupt or data.sha256 is wrong (set it to null to skip the check)"
        )
    os.replace(partial, dest)
    return dest


def _check_inside(archive: Path, dest: Path, member: str, target: Path) -> None:
    if not target.resolve().is_relative_to(dest):
        raise DataError(
            f"refusing to extract {archive}: member {member!r} would be written outside {dest}"
        )


def _check_tar_members(archive: Path, dest: Path, members: Iterable[tarfile.TarInfo]) -> None:
    for member in members:
        target = dest / member.name
        _check_inside(archive, dest, member.name, target)
        if member.issym():
            _check_inside(archive, dest, member.name, target.parent / member.linkname)
        elif member.islnk():
            _check_inside(archive, dest, member.name, dest / member.linkname)
        elif not (member.isfile() or member.isdir()):
            raise DataError(
                f"refusing to extract {archive}: member {member.name!r} is a device or fifo"
            )


def extract_archive(path: str | Path, dest: str | Path) -> Path:
    """Extract a tar (optionally gzip/bz2/xz-compressed) or zip archive into ``dest``.

    Members that would land outside ``dest`` (absolute paths, ``..``, links pointing out) are
    rejected before anything is written.
    """
    path = Path(path)
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                _check_inside(path, dest, name, dest / name)
            archive.extractall(dest)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            _check_tar_members(path, dest, archive.getmembers())
            # Where available, also let tarfile's own "data" filter guard the extraction;
            # Python 3.12+ warns when no filter is chosen.
            safety = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            try:
                archive.extractall(dest, **safety)
            except tarfile.TarError as err:
                raise DataError(f"refusing to extract {path}: {err}") from err
    else:
        raise DataError(
            f"{path} is not a tar or zip archive; data.url must point at a .tar.gz, .tgz, .tar "
            "or .zip file"
        )
    return dest


def _find_dataset_dir(extracted: Path, train_split: str, url: str) -> Path:
    """The shallowest folder of the extracted tree that holds a ``train_split`` folder."""
    candidates = [path.parent for path in extracted.rglob(train_split) if path.is_dir()]
    if not candidates:
        raise DataError(
            f"the archive at data.url={url} has no '{train_split}/' folder at any depth; "
            "data.url must point at a pix2pix-layout archive (train/, val/, test/ of A|B images)"
        )
    return min(candidates, key=lambda folder: (len(folder.parts), str(folder)))


def _check_counts(dataset_dir: Path, expected_counts: Mapping[str, int], url: str) -> None:
    mismatches = []
    for split, expected in expected_counts.items():
        folder = dataset_dir / split
        found = len(list_images(folder)) if folder.is_dir() else 0
        if found != expected:
            mismatches.append(f"split '{split}' expected {expected} images, found {found}")
    if mismatches:
        raise DataError(
            f"the archive at data.url={url} does not match data.expected_counts: "
            f"{'; '.join(mismatches)}; fix data.expected_counts or data.url"
        )


def place_dataset(src: str | Path, root: str | Path) -> Path:
    """Move the dataset folder ``src`` to ``root`` by renaming, never overwriting anything.

    A missing ``root`` is created by renaming ``src`` itself; an existing one receives
    ``src``'s entries, and if any of them already exists there nothing is moved.
    """
    src, root = Path(src), Path(root)
    if not root.exists():
        os.replace(src, root)
        return root
    clashes = sorted(child.name for child in src.iterdir() if (root / child.name).exists())
    if clashes:
        raise DataError(
            f"data.root={root} already contains {', '.join(clashes)}; remove them or choose "
            "another data.root so the new dataset can be placed there"
        )
    for child in src.iterdir():
        os.replace(child, root / child.name)
    return root


@contextmanager
def preparing(root: str | Path) -> Iterator[None]:
    """Hold the lock on creating the dataset at ``root`` (a lock file beside it).

    Parallel jobs of a sweep start at the same moment and all find the dataset missing; the
    first one to take the lock creates it, the others wait and then find it in place. Check
    again for the dataset inside the lock.
    """
    root = Path(root).expanduser().resolve()
    root.parent.mkdir(parents=True, exist_ok=True)
    lock_path = root.parent / f".{root.name}.lock"
    with FileLock(lock_path):
        yield
        # Only after success: a job arriving later finds the dataset before it looks for the
        # lock, and jobs still waiting on the removed file check again once they hold it.
        # After a failure the file stays, so the next jobs still take turns.
        lock_path.unlink(missing_ok=True)


def fetch_dataset(
    url: str,
    root: str | Path,
    sha256: str | None = None,
    expected_counts: Mapping[str, int] | None = None,
    train_split: str = "train",
) -> Path:
    """Download and extract a pix2pix-layout archive and place its dataset folder at ``root``.

    Archives usually wrap the splits in a top-level folder (facades.tar.gz holds
    ``facades/{train,val,test}``); the shallowest folder holding ``train_split`` is used.
    Everything happens in a temporary folder beside ``root``, so ``root`` only appears once the
    archive is verified, extracted and (when ``expected_counts`` is given) counted.
    """
    root = Path(root).expanduser().resolve()
    root.parent.mkdir(parents=True, exist_ok=True)
    archive_name = Path(urlparse(url).path).name or "archive"
    with tempfile.TemporaryDirectory(prefix=f".{root.name}-download-", dir=root.parent) as tmp:
        archive = download_file(url, Path(tmp) / archive_name, sha256)
        extracted = extract_archive(archive, Path(tmp) / "extracted")
        dataset_dir = _find_dataset_dir(extracted, train_split, url)
        # Counted before placing: a wrong dataset at root would be reused silently next time.
        if expected_counts:
            _check_counts(dataset_dir, expected_counts, url)
        return place_dataset(dataset_dir, root)
