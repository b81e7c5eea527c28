"""Local parallel sweeps: the jobs of a Hydra multirun run side by side, one per device slot.

``hydra/launcher=local_parallel`` is hydra-joblib-launcher with :class:`DeviceSlots`, a Hydra
callback. At the start of the sweep the callback counts the slots — ``jobs_per_gpu`` per
visible GPU, or ``cpu_jobs`` without a GPU — and the launcher starts that many worker
processes. Joblib hands each job to whichever worker is free, so the device cannot follow
from the job number (job 2 may start while job 0 still holds GPU 0, and a worker that ran
job 1 has GPU 1 set up for good). Instead each worker takes a free slot the first time it
runs a job and keeps it: a lock file per slot in the sweep folder, held until the process
ends. A GPU worker then sees only its GPU (``CUDA_VISIBLE_DEVICES``, set before it first
touches CUDA); a CPU worker uses its share of the cores. Scheduling stays joblib's; this only
decides which device a worker uses. Data-loader workers (``data.num_workers`` > 0) work in
the jobs: the callback gives each worker the platform's usual process start method back.
With more than one slot it also makes a SIGTERM or Ctrl+C stop the sweep as one
(:mod:`~pix2pix_lit.launching.sweep_stop`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.launching.slot_locks import claim_slot
from pix2pix_lit.launching.sweep_stop import SweepStop, end_job, start_job

log = logging.getLogger(__name__)

# How the sweep tells the launcher (n_jobs) and its workers the slots: their number, and
# the device of each, comma-separated ("cpu" for a CPU slot).
JOBS_ENV = "PIX2PIX_PARALLEL_JOBS"
SLOTS_ENV = "PIX2PIX_DEVICE_SLOTS"
CPU_SLOT = "cpu"


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries for the workers."""
    count = torch.cuda.device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [entry.strip() for entry in listed.split(",") if entry.strip()][:count]
    return [str(i) for i in range(count)]


def device_slots(gpus: list[str], jobs_per_gpu: int, cpu_jobs: int) -> list[str]:
    """One entry per concurrent job: each GPU ``jobs_per_gpu`` times, or ``cpu_jobs`` CPU slots."""
    if gpus:
        return [gpu for gpu in gpus for _ in range(jobs_per_gpu)]
    return [CPU_SLOT] * cpu_jobs


class DeviceSlots(Callback):
    """Counts the device slots of a sweep and gives each worker process one for all its jobs.

    Args:
        jobs_per_gpu: jobs sharing each visible GPU (more than 1 packs small jobs on a GPU).
        cpu_jobs: jobs at once when no GPU is visible; each gets an equal share of the cores.

    Needs ``fcntl`` locks (Linux, macOS). Does nothing in a single run.
    """

    def __init__(self, jobs_per_gpu: int = 1, cpu_jobs: int = 2) -> None:
        for key, value in (("jobs_per_gpu", jobs_per_gpu), ("cpu_jobs", cpu_jobs)):
            if value < 1:
                raise ConfigError(f"hydra.callbacks.device_slots.{key}={value} must be >= 1")
        self.jobs_per_gpu = jobs_per_gpu
        self.cpu_jobs = cpu_jobs
        self._stop: SweepStop | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Runs before the launcher is built, which reads its n_jobs from JOBS_ENV; the worker
        # processes start later and inherit both variables.
        slots = device_slots(visible_gpus(), self.jobs_per_gpu, self.cpu_jobs)
        os.environ[JOBS_ENV] = str(len(slots))
        os.environ[SLOTS_ENV] = ",".join(slots)
        log.info("Device slots of this sweep: %s", ", ".join(slots))
        if len(slots) > 1:  # one slot: joblib runs the jobs in this process, Lightning stops them
            self._stop = SweepStop(_lock_dir(config))
            self._stop.install()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._stop is not None:
            self._stop.restore()
            self._stop = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        listed = os.environ.get(SLOTS_ENV)
        if not listed or config.hydra.mode.name != "MULTIRUN":
            return
        _standard_start_method()
        slots = listed.split(",")
        index = claim_slot(_lock_dir(config), len(slots))
        device = slots[index]
        if device == CPU_SLOT:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // len(slots)))
            device = f"cpu, {torch.get_num_threads()} threads"
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = device
        log.info("Job %s: slot %d of %d (%s)", config.hydra.job.num, index, len(slots), device)
        start_job()

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        end_job()


def _lock_dir(config: DictConfig) -> Path:
    return Path(config.hydra.sweep.dir) / ".device_slots"


def _standard_start_method() -> None:
    # A joblib (loky) worker makes loky's start method the default; a DataLoader with
    # workers started from it then fails with "'Process' object has no attribute 'env'"
    # (facebookresearch/hydra #964). Give it the platform's usual one back.
    if multiprocessing.get_start_method(allow_none=True) == "loky":
        multiprocessing.set_start_method("fork" if sys.platform == "linux" else "spawn", force=True)
