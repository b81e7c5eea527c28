"""A callback that records the training process's resident memory as training goes on.

Added to a run with ``+callbacks.rss._target_=rss_probe.ResidentMemoryProbe`` (this folder on
``PYTHONPATH``, as ``under_load.py memory`` does). Every ``every_n_batches`` training batches,
at the start of every epoch (after the previous epoch's validation and checkpoints) and when
training ends, it appends a row to ``path``: what happened (``epoch_start``, ``batch``,
``train_end``), batches done, epoch, seconds since the fit started, the resident set (``VmRSS``) and its peak (``VmHWM``) of the training process, and
the summed ``VmRSS`` of its child processes (data-loader workers). Linux only (``/proc``).
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import lightning as L

COLUMNS = ("event", "batches", "epoch", "seconds", "rss_mib", "peak_mib", "workers_mib")


def status_mib(pid: int | str, field: str) -> float:
    """A memory line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in MiB; 0 when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024  # the kernel writes kB
    except OSError:
        pass  # the process ended between listing and reading
    return 0.0


def children(pid: int) -> list[str]:
    """Process ids whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # "pid (name) state ppid ...": the name may hold spaces, so split after ")"
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(entry)
    return found


class ResidentMemoryProbe(L.Callback):
    def __init__(self, path: str, every_n_batches: int = 50) -> None:
        self.path = Path(path)
        self.every_n_batches = every_n_batches
        self.batches = 0
        self.started = time.monotonic()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerow(COLUMNS)

    def _record(self, trainer: L.Trainer, event: str) -> None:
        pid = os.getpid()
        row = (
            event,
            self.batches,
            trainer.current_epoch,
            round(time.monotonic() - self.started, 1),
            round(status_mib(pid, "VmRSS"), 1),
            round(status_mib(pid, "VmHWM"), 1),
            round(sum(status_mib(child, "VmRSS") for child in children(pid)), 1),
        )
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow(row)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, "epoch_start")

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.batches += 1
        if self.batches % self.every_n_batches == 0:
            self._record(trainer, "batch")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, "train_end")
