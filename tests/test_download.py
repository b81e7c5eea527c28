"""Fetching a dataset: download, checksum and count verification, safe extraction of archives."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from helpers import small_paired_module
from pix2pix_lit.data import extract_archive, fetch_dataset, make_synthetic_paired_dataset
from pix2pix_lit.errors import DataError

ARCHIVE_COUNTS = {"train": 3, "val": 2, "test": 2}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A facades-like .tar.gz: a top-level ``facades/`` folder holding train/val/test."""
    work = tmp_path_factory.mktemp("archive")
    dataset = make_synthetic_paired_dataset(work / "facades", ARCHIVE_COUNTS, size=16)
    path = work / "facades.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(dataset, arcname="facades")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepare_data_downloads_verifies_and_extracts(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "data" / "facades"
    module = small_paired_module(
        root,
        url=archive.as_uri(),
        sha256=_sha256(archive),
        expected_counts=ARCHIVE_COUNTS,
        load_size=16,
        crop_size=16,
    )
    module.prepare_data()
    assert sorted(p.name for p in root.iterdir()) == ["test", "train", "val"]
    assert not [p for p in root.parent.iterdir() if p != root], "temporary files left behind"
    module.setup("fit")
    assert len(module.train_set) == 3 and len(module.val_set) == 2
    module.url = "file:///does/not/exist.tar.gz"
    module.prepare_data()  # root is complete now: nothing is fetched again


def test_wrong_checksum_is_rejected_and_nothing_is_placed(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "facades"
    with pytest.raises(DataError, match=r"sha256 of .* but data.sha256=0000"):
        fetch_dataset(archive.as_uri(), root, sha256="0" * 64)
    assert not root.exists()


def test_wrong_counts_name_split_expected_and_found(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "facades"
    expected = {"train": 400, "val": 2, "test": 106}
    with pytest.raises(DataError) as caught:
        fetch_dataset(archive.as_uri(), root, expected_counts=expected)
    message = str(caught.value)
    assert "split 'train' expected 400 images, found 3" in message
    assert "split 'test' expected 106 images, found 2" in message and "'val'" not in message
    assert not root.exists()


def test_unreachable_url_and_bad_scheme_raise_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="could not download data.url=file:"):
        fetch_dataset((tmp_path / "missing.tar.gz").as_uri(), tmp_path / "root")
    with pytest.raises(DataError, match="unsupported scheme 'ftp'"):
        fetch_dataset("ftp://example.com/data.tar.gz", tmp_path / "root")


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    link = tarfile.TarInfo(name)
    link.type, link.linkname = tarfile.SYMTYPE, target
    return link


@pytest.mark.parametrize(
    "member",
    [tarfile.TarInfo("../evil.txt"), tarfile.TarInfo("/tmp/evil.txt"), _symlink("link", "/etc")],
    ids=["dotdot", "absolute", "symlink-out"],
)
def test_archive_members_escaping_the_target_are_rejected(
    tmp_path: Path, member: tarfile.TarInfo
) -> None:
    archive = _tar_with(tmp_path / "evil.tar.gz", member, b"pwned")
    dest = tmp_path / "out"
    with pytest.raises(DataError, match=rf"refusing to extract .*{re.escape(member.name)}"):
        extract_archive(archive, dest)
    assert not (tmp_path / "evil.txt").exists() and not any(dest.iterdir())


def test_zip_archives_are_extracted(tmp_path: Path) -> None:
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("set/train/a.png", b"x")
    assert (extract_archive(path, tmp_path / "out") / "set" / "train" / "a.png").is_file()
