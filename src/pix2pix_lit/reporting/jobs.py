"""What a finished (or failed) job left in its run folder: overrides, metrics, evaluations,
best checkpoint and last sample grid."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pix2pix_lit.callbacks.elapsed import ELAPSED_KEY
from pix2pix_lit.errors import DataError
from pix2pix_lit.training.run_folder import FINAL_METRICS_FILE

# the prefix of an evaluation's scores in Job.series ("eval/SSIM", "eval/FCN/mean_IoU")
EVAL_PREFIX = "eval/"
# in a job's record (reporting.records), the names of the checkpoints its run folder kept
KEPT_CHECKPOINTS_FILE = "kept_checkpoints.txt"


@dataclass
class Evaluation:
    """The scores of one ``evaluate`` run written inside the job folder (its ``metrics.json``),
    the 0-based epoch of the checkpoint it scored and the whole epochs that checkpoint had
    trained (None: written before evaluate recorded them)."""

    epoch: int | None
    epochs_trained: int | None
    scores: dict[str, float]

    @classmethod
    def from_report(cls, written: dict[str, Any]) -> Evaluation:
        """From a ``metrics.json``; one written before ``checkpoint_epochs_trained`` was
        recorded counts its checkpoint's epoch as trained, as an epoch-end checkpoint has."""
        epoch = written.get("checkpoint_epoch")
        trained = written.get("checkpoint_epochs_trained", None if epoch is None else epoch + 1)
        scores = {k: v for k, v in written.get("metrics", {}).items() if v is not None}
        return cls(epoch, trained, scores)

    @property
    def at_epoch_end(self) -> bool:
        """Whether it scored a checkpoint of an epoch's end (not an interrupted run's
        mid-epoch one), so that it lies on a learning curve by epochs."""
        return self.epoch is not None and self.epochs_trained == self.epoch + 1


@dataclass
class Job:
    """What one finished (or failed) job left in its folder."""

    path: Path
    overrides: list[str]
    # what the report calls it: its folder's name, "<sweep folder>/<job>" among several sweeps
    name: str = ""
    rows: list[dict[str, str]] = field(default_factory=list)
    # in training order (by the scored checkpoint's epoch; unknown epochs first)
    evaluations: list[Evaluation] = field(default_factory=list)
    # the model checkpoint callback's files (best_*.ckpt), in name order: the best one, or
    # several when it keeps more (save_top_k=-1 with every_n_epochs keeps them periodically)
    kept_checkpoints: list[str] = field(default_factory=list)
    sample: Path | None = None
    wall_time_s: float | None = None
    # False: the run did not log time/elapsed_s, and wall_time_s is the span of its files
    wall_time_logged: bool = True

    @property
    def final_evaluation(self) -> Evaluation | None:
        """The evaluation of the latest checkpoint scored (None when none was run)."""
        return self.evaluations[-1] if self.evaluations else None

    @property
    def final_scores(self) -> dict[str, float]:
        """The scores of the evaluation of the latest checkpoint ({} when none was run)."""
        return self.final_evaluation.scores if self.final_evaluation else {}

    def scores_after(self, epochs: int) -> dict[str, float]:
        """The scores of the evaluation of the checkpoint at the end of epoch ``epochs`` ({}
        when none was run: an undated evaluation cannot be said to be one)."""
        found = [e for e in self.evaluations if e.at_epoch_end and e.epochs_trained == epochs]
        return found[-1].scores if found else {}

    def last(self, key: str) -> float | None:
        """The last logged value of ``key``."""
        values = self.series(key)
        return values[-1][1] if values else None

    def series(self, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of every row that logged ``key``; ``train/D_step`` averages the
        real and fake terms of the discriminator loss; ``eval/<metric>`` gives the evaluations
        of checkpoints along the way, at the last step logged in the checkpoint's epoch."""
        if key.startswith(EVAL_PREFIX):
            metric = key.removeprefix(EVAL_PREFIX)
            last_step = {int(row["epoch"]): int(row["step"]) for row in self.rows}
            return [
                (last_step[e.epoch], e.scores[metric])
                for e in self.evaluations
                if e.epoch in last_step and metric in e.scores
            ]
        if key == "train/D_step":
            real, fake = self.series("train/D_real_step"), self.series("train/D_fake_step")
            return [(s, (r + f) / 2) for (s, r), (_, f) in zip(real, fake, strict=True)]
        return [(int(row["step"]), float(row[key])) for row in self.rows if row.get(key)]

    @property
    def finished(self) -> bool:
        """Whether its training ended (else it is still running, or was stopped)."""
        return (self.path / FINAL_METRICS_FILE).is_file()

    @property
    def epochs(self) -> int:
        """The epochs it trained; a test after training logs at the epoch count it reached,
        as if in one epoch more, so test rows are not counted."""
        return max((int(row["epoch"]) + 1 for row in self.rows if not _test_row(row)), default=0)


def _test_row(row: dict[str, str]) -> bool:
    """Whether a metrics.csv row holds only ``test/`` scores."""
    logged = [k for k, v in row.items() if v and k not in ("epoch", "step")]
    return bool(logged) and all(k.startswith("test/") for k in logged)


def relative_override(override: str) -> str:
    """``key=/abs/path`` → ``key=<path relative to the working directory>``, so a report
    committed from one machine does not carry that machine's folders."""
    key, sep, value = override.partition("=")
    if not sep or not os.path.isabs(value):
        return override
    return f"{key}={os.path.relpath(value)}"


def find_job_dirs(path: Path) -> list[Path]:
    """The job folders of a multirun folder (in job order), or ``[path]`` for a run folder."""
    if (path / ".hydra" / "overrides.yaml").is_file():
        return [path]
    jobs = [p for p in path.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()]
    if not jobs:
        raise DataError(
            f"{path} holds no run folders (a run folder has .hydra/overrides.yaml); give a "
            "multirun folder (logs/<task_name>/multiruns/<timestamp>) or a run folder"
        )
    return sorted(jobs, key=lambda p: int(p.name) if p.name.isdigit() else math.inf)


def load_job(path: Path, name: str | None = None) -> Job:
    """Read one job folder (``name``: what to call it, by default its folder's name); a job
    that wrote no metrics yet gets an empty ``rows``."""
    # as written: overrides may hold interpolations, which only resolve inside the job
    overrides = OmegaConf.to_container(OmegaConf.load(path / ".hydra" / "overrides.yaml"))
    job = Job(
        path=path,
        overrides=[relative_override(str(o)) for o in overrides or []],
        name=name or path.name,
    )
    metrics_csv = path / "csv" / "metrics.csv"
    if metrics_csv.is_file():
        with metrics_csv.open() as f:
            job.rows = list(csv.DictReader(f))
        # the run's own count over its sessions; else (runs before it was logged) the time
        # from its start to its last logged row, which counts the gaps between sessions too
        job.wall_time_s = job.last(ELAPSED_KEY)
        if job.wall_time_s is None:
            job.wall_time_logged = False
            start = (path / ".hydra" / "config.yaml").stat().st_mtime
            job.wall_time_s = metrics_csv.stat().st_mtime - start
    undated: list[Evaluation] = []
    by_progress: dict[tuple[int, int], Evaluation] = {}
    for report in evaluation_reports(path):
        found = Evaluation.from_report(json.loads(report.read_text()))
        # one per state: last.ckpt and the checkpoint kept at the last epoch hold the same one
        if found.epoch is None or found.epochs_trained is None:
            undated.append(found)
        else:
            by_progress[found.epoch, found.epochs_trained] = found
    job.evaluations = undated + [by_progress[key] for key in sorted(by_progress)]
    kept = path / KEPT_CHECKPOINTS_FILE  # in a record, which has no checkpoints
    job.kept_checkpoints = (
        kept.read_text().split()
        if kept.is_file()
        else [p.name for p in sorted((path / "checkpoints").glob("best*.ckpt"))]
    )
    samples = sorted((path / "images").glob("epoch_*.png"))
    job.sample = samples[-1] if samples else None
    return job


def evaluation_reports(path: Path) -> list[Path]:
    """The ``metrics.json`` of each ``evaluate`` run written inside the job folder ``path``."""
    return sorted(path.glob("**/metrics.json"))


def load_jobs(dirs: Sequence[Path]) -> list[Job]:
    """The jobs of each multirun (or run) folder in turn; among several folders a job is
    called ``<folder>/<job>``, as sweeps number their jobs from 0 each."""
    return [
        load_job(job, f"{folder.name}/{job.name}" if len(dirs) > 1 and job != folder else None)
        for folder in dirs
        for job in find_job_dirs(folder)
    ]


def split_overrides(jobs: Sequence[Job]) -> tuple[list[str], list[list[str]]]:
    """The overrides every job shares, and each job's own (those that tell the jobs apart)."""
    shared = [o for o in jobs[0].overrides if all(o in job.overrides for job in jobs)]
    return shared, [[o for o in job.overrides if o not in shared] for job in jobs]
