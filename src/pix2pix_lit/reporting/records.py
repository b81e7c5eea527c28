"""A job's record: the small files of its run folder that the report reads, copied out of it.

A run folder holds gigabytes of checkpoints and evaluation galleries and lives on the machine
that trained it; when that machine is gone, so are the scores behind a study's table. A
record keeps what the table and the figure are made of (the overrides and composed config,
``csv/metrics.csv``, ``final_metrics.json``, each evaluation's ``metrics.json``, the last
sample grid and the names of the kept checkpoints), a few hundred KB a job, small enough to
commit beside the study. It also keeps ``csv/hparams.yaml``, the config as the run resolved
it: ``.hydra/config.yaml`` leaves interpolations such as ``perf=fast``'s precision
(``${native_mixed_precision:...}``) unresolved, and they would resolve to something else on
the machine that reads the record. ``python -m pix2pix_lit.report <records>`` rebuilds the
same table from it.

Absolute paths inside the copied files (an evaluation's ``ckpt_path``, its segmenter's, the
run's output folders in the resolved config) are written relative to the job's folder, so a
record names no folder of the machine it came from. A run from before ``time/elapsed_s`` was
logged has only its files' times for a wall time, which a copy through git does not keep.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pix2pix_lit.errors import DataError
from pix2pix_lit.reporting.jobs import KEPT_CHECKPOINTS_FILE, Job, evaluation_reports
from pix2pix_lit.training.run_folder import FINAL_METRICS_FILE

# the run folder's files of a record, where the job wrote them
RECORD_FILES = (".hydra/overrides.yaml", ".hydra/config.yaml", "csv/metrics.csv",
                FINAL_METRICS_FILE)  # fmt: skip
# the config as the run resolved it, as Lightning's CSVLogger wrote it
RESOLVED_CONFIG = "csv/hparams.yaml"


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
    resolved = job.path / RESOLVED_CONFIG
    sources = ([resolved] if resolved.is_file() else []) + evaluation_reports(job.path)
    for source in sources:
        _copy_with_relative_paths(source, record / source.relative_to(job.path), job.path)
    if job.kept_checkpoints:
        (record / KEPT_CHECKPOINTS_FILE).write_text("\n".join(job.kept_checkpoints) + "\n")
    return record


def _copy_with_relative_paths(source: Path, target: Path, job_dir: Path) -> None:
    """Copy the JSON or YAML file ``source`` to ``target`` with its absolute paths written
    relative to ``job_dir``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".json":
        written = _relative_paths(json.loads(source.read_text()), job_dir)
        target.write_text(json.dumps(written, indent=2))
    else:
        written = _relative_paths(OmegaConf.to_container(OmegaConf.load(source)), job_dir)
        target.write_text(OmegaConf.to_yaml(written))


def _relative_paths(value: Any, job_dir: Path) -> Any:
    """``value`` with each absolute path string written relative to ``job_dir``."""
    if isinstance(value, dict):
        return {k: _relative_paths(v, job_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative_paths(v, job_dir) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.relpath(value, job_dir)
    return value
