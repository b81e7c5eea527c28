"""A job of a Hydra multirun (``-m``): whether this process runs one, where it stands in its
sweep, how it leaves the process for the next job, and the value it hands the sweeper."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from pix2pix_lit.errors import ConfigError

log = logging.getLogger(__name__)


def in_sweep() -> bool:
    """Whether this process runs a job of a Hydra multirun (``-m``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@dataclass(frozen=True)
class SweepJob:
    """Where a job of a Hydra multirun stands: its sweep folder, number and overrides."""

    sweep_dir: Path
    num: int
    overrides: tuple[str, ...]

    def group(self, prefix: str) -> str:
        """One name for every job of the sweep: ``<prefix>_<sweep folder name>``."""
        return f"{prefix}_{self.sweep_dir.name}"


def current_sweep_job() -> SweepJob | None:
    """The running job's place in its multirun; None outside a multirun (or of Hydra)."""
    if not in_sweep():
        return None
    hydra = HydraConfig.get()
    return SweepJob(Path(hydra.sweep.dir), int(hydra.job.num), tuple(hydra.overrides.task))


@contextmanager
def isolated_run() -> Iterator[None]:
    """Leave the process as the run found it, so the next job of a sweep in this process
    starts afresh: the environment variables the run set are undone (Lightning's DDP launcher
    sets ``MASTER_PORT``, ``LOCAL_RANK``, ``WORLD_SIZE``…; with ``LOCAL_RANK`` left set,
    Lightning would take the next job for one whose processes a cluster starts), and the
    process group of a DDP run is closed (the next job would reuse it, with peers gone)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def monitored_metric(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a sweeper optimises (``optimized_metric``).

    A run that never logged it (too short to validate, ``++trainer.max_steps=2``) is still a
    finished run: a warning and None. Only a hyper-parameter search needs the value; there a
    missing one fails the trial with that reason.
    """
    if not name:
        return None
    if name in metrics:
        return metrics[name]
    problem = (
        f"optimized_metric={name!r} was not logged (the run never validated?); logged "
        f"metrics: {', '.join(sorted(metrics)) or 'none'}"
    )
    if searching_hyperparameters():
        raise ConfigError(problem)
    log.warning("%s", problem)
    return None


def searching_hyperparameters() -> bool:
    """Whether this job is a trial of a sweeper that optimises the returned value (Optuna…),
    rather than of Hydra's basic sweeper, which only runs the jobs."""
    if not in_sweep():
        return False
    target = str(HydraConfig.get().sweeper.get("_target_", ""))
    return not target.endswith("BasicSweeper")
