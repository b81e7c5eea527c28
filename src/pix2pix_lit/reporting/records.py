"""A job's record: the small files of its run folder that the report reads, copied out of it.

A run folder holds gigabytes of checkpoints and evaluation galleries and lives on the machine
that trained it; when that machine is gone, so are the scores behind a study's table. A
record keeps what the table and the figure are made of (the overrides and composed config,
``csv/metrics.csv``, ``final_metrics.json``, each evaluation's ``metrics.json``, the last
sample grid and the names of the kept checkpoints), a few hundred KB a job, small enough to
commit beside the study. ``python -m pix2pix_lit.report <records>`` rebuilds the same table
from it.

Absolute paths inside the copied files (an evaluation's ``ckpt_path``, its segmenter's) are
written relative to the job's folder, so a record names no folder of the machine it came
from. A run from before ``time/elapsed_s`` was logged has only its files' times for a wall
time, which a copy through git does not keep.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pix2pix_lit.errors import DataError
from pix2pix_lit.reporting.jobs import KEPT_CHECKPOINTS_FILE, Job, evaluation_reports
from pix2pix_lit.training.run_folder import FINAL_METRICS_FILE

# the run folder's files of a record, where the job wrote them
RECORD_FILES = (".hydra/overrides.yaml", ".hydra/config.yaml", "csv/metrics.csv",
                FINAL_METRICS_FILE)  # fmt: skip


def keep_records(jobs: Sequence[Job], records_dir: Path) -> list[Path]:
    """Each job's record in ``records_dir/<job name>`` (as the report names it), replacing an
    earlier record of the same job; return the record folders."""
    return [keep_record(job, records_dir / job.name) for job in jobs]


def keep_record(job: Job, record: Path) -> Path:
    """Copy ``job``'s record into the folder ``record`` (replaced if it holds one)."""
    if record.exists():
        if not (record / RECORD_FILES[0]).is_file():
            raise DataError(
                f"{record} exists and is not a job's record (no {RECORD_FILES[0]}); give "
                "--keep-records a folder of records, or a new one"
            )
        shutil.rmtree(record)  # a record is rewritten whole: no evaluation or sample left over
    files = [job.path / name for name in RECORD_FILES if (job.path / name).is_file()]
    if job.sample:
        files.append(job.sample)
    for source in files:
        target = record / source.relative_to(job.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for report in evaluation_reports(job.path):
        target = record / report.relative_to(job.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = json.loads(report.read_text())
        target.write_text(json.dumps(_relative_paths(written, job.path), indent=2))
    if job.kept_checkpoints:
        (record / KEPT_CHECKPOINTS_FILE).write_text("\n".join(job.kept_checkpoints) + "\n")
    return record


def _relative_paths(value: Any, job_dir: Path) -> Any:
    """``value`` with each absolute path string written relative to ``job_dir``."""
    if isinstance(value, dict):
        return {k: _relative_paths(v, job_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative_paths(v, job_dir) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.relpath(value, job_dir)
    return value
