"""Read the records of an offline W&B run (``wandb/offline-run-*/run-<id>.wandb``), the
file ``wandb sync`` uploads, with W&B's own protobuf messages.

The file is W&B's 7-byte header (``:W&B``, magic, version) followed by LevelDB-log framing:
32 KiB blocks of chunks, each with a 7-byte header (CRC32C, length, type); a record is one
FULL chunk or a FIRST, MIDDLE..., LAST sequence; a block's tail shorter than a header is
padding.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

HEADER = b":W&B"
BLOCK = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    """Every record of the ``.wandb`` file at ``path``, in order."""
    data = path.read_bytes()
    assert data.startswith(HEADER), f"{path} is not a W&B run file"
    pos, pending = 7, b""
    while pos + CHUNK_HEADER.size <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < CHUNK_HEADER.size:
            pos += left_in_block
            continue
        _, length, kind = CHUNK_HEADER.unpack_from(data, pos)
        if kind == 0:
            break
        pos += CHUNK_HEADER.size
        pending += data[pos : pos + length]
        pos += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def offline_run_file(run_dir: Path) -> Path:
    """The ``.wandb`` file of the one offline W&B run under ``run_dir/wandb``."""
    (path,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    return path


def of_type(path: Path, kind: str) -> list[Any]:
    """The payloads of the records of ``kind`` (``run``, ``config``, ``metric``, ``history``,
    ``summary``, ``artifact``...) in the file at ``path``."""
    return [getattr(r, kind) for r in records(path) if r.WhichOneof("record_type") == kind]


def config(path: Path) -> dict[str, Any]:
    """The run config as the file leaves it: each update applied in turn."""
    values: dict[str, Any] = {}
    for update in [*(r.config for r in of_type(path, "run")), *of_type(path, "config")]:
        for item in update.update:
            values[item.key] = json.loads(item.value_json)
    return values


def summary(path: Path) -> dict[str, Any]:
    """The final summary: each summary update applied in turn (nested keys joined by ``.``)."""
    values: dict[str, Any] = {}
    for update in of_type(path, "summary"):
        for item in update.update:
            key = item.key or ".".join(item.nested_key)
            values[key] = json.loads(item.value_json)
    return values


def history(path: Path, key: str) -> list[Any]:
    """Every logged value of ``key``, step by step."""
    values = []
    for row in of_type(path, "history"):
        for item in row.item:
            if (item.key or ".".join(item.nested_key)) == key:
                values.append(json.loads(item.value_json))
    return values
