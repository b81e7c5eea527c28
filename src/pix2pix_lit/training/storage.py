"""Files written whole or not at all: checkpoints and run records survive a crash mid-write.

A file is written to a hidden ``.<name>.part`` beside it, flushed to disk and renamed over
the old one. A rename within a folder is atomic, so a reader (or a resumed run) finds either
the previous file or the new one, never a mix; a killed writer leaves only the ``.part`` file,
which the next owner of the run folder removes (:func:`remove_partial_files`).

Lightning's own checkpoint writer does not give this everywhere: its fsspec transaction
writes the temporary file in the system's temporary folder and *moves* it, which is a copy
onto the checkpoint itself when that folder is on another file system (a tmpfs ``/tmp``, a
cluster's scratch space), and it leaves the temporary file behind when killed.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from pix2pix_lit.errors import StorageError

PARTIAL_SUFFIX = ".part"


def partial_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place."""
    return path.with_name(f".{path.name}{PARTIAL_SUFFIX}")


def write_atomically(path: str | Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` whole or not at all; on failure ``path`` is untouched and
    :class:`StorageError` names it and the cause."""
    path = Path(path)
    partial = partial_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # on disk before the rename: else a power cut may leave an empty file
        finally:
            os.close(fd)
        os.replace(partial, path)
    except OSError as err:
        partial.unlink(missing_ok=True)
        reason = err.strerror or str(err)
        raise StorageError(
            f"could not write {path}: {reason}; the previous {path.name} (if any) is unchanged. "
            "Free space on that disk (or choose another paths.log_dir) and resume"
        ) from err


def remove_partial_files(folder: Path) -> list[Path]:
    """Delete the ``.part`` files a killed writer left in ``folder``; return them."""
    leftovers = sorted(folder.glob(f".*{PARTIAL_SUFFIX}")) if folder.is_dir() else []
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing every checkpoint with :func:`write_atomically`
    (the trainer's checkpoints and the emergency ones alike go through it)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomically(path, buffer.getbuffer())
