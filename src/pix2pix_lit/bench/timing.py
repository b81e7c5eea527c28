"""Step timing and peak memory of one training run, shared by the Lightning and plain runs.

Only steady-state steps count: the first ``warmup`` steps (compilation, allocator warm-up) and
the first step of every epoch (loader start) are left out. On a CPU a step's time is the median
interval between the ends of consecutive steps (robust to other processes on a shared machine);
on a GPU, where steps are asynchronous, the mean over the window between two synchronisations.
"""

from __future__ import annotations

import ctypes
import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

import lightning as L
import torch

from pix2pix_lit.errors import ConfigError


@dataclass
class StepTimes:
    """When each training step's batch was ready and when the step was done (perf_counter),
    and the process's CPU time at each step's end (``process_time``: other processes on a
    shared machine slow the wall clock far more than they change the work a step costs)."""

    ready: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    cpu_done: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    epoch_starts: list[int] = field(default_factory=list)
    synced: list[int] = field(default_factory=list)

    def new_epoch(self) -> None:
        self.epoch_starts.append(len(self.done))

    def batch_ready(self, size: int) -> None:
        self.ready.append(perf_counter())
        self.sizes.append(size)

    def batch_done(self, device: torch.device, warmup: int, total: int) -> None:
        """Mark a step's end; on a GPU synchronise only around the measured window."""
        step = len(self.done) + 1
        if device.type == "cuda" and step in (warmup, total):
            torch.cuda.synchronize(device)
            self.synced.append(step - 1)
        self.done.append(perf_counter())
        self.cpu_done.append(process_time())

    def summary(self, warmup: int, batch_size: int) -> dict[str, float | int | None]:
        """Median and fastest ms/step, img/s (from the median), CPU ms/step and the median wait
        for data between steps (fastest, CPU time and wait: not measured on a GPU)."""
        steady = [
            i
            for i in range(max(warmup, 1), len(self.done))
            if i not in self.epoch_starts and self.sizes[i] == batch_size
        ]
        if not steady:
            raise ConfigError(
                f"no steady-state step to time ({len(self.done)} steps, warmup {warmup}); "
                "raise --steps"
            )
        if len(self.synced) == 2:
            first, last = self.synced
            seconds = (self.done[last] - self.done[first]) / (last - first)
            best = wait = cpu = None
        else:
            intervals = [self.done[i] - self.done[i - 1] for i in steady]
            seconds = statistics.median(intervals)
            best = min(intervals) * 1e3
            wait = statistics.median(self.ready[i] - self.done[i - 1] for i in steady) * 1e3
            cpu = statistics.median(self.cpu_done[i] - self.cpu_done[i - 1] for i in steady) * 1e3
        return {
            "ms_per_step": seconds * 1e3,
            "best_ms_per_step": best,
            "cpu_ms_per_step": cpu,
            "images_per_s": batch_size / seconds,
            "data_wait_ms": wait,
            "steps": len(steady),
        }


class StepTimer(L.Callback):
    """Records :class:`StepTimes` of a Lightning run, stops it after ``warmup + steps`` steps
    and writes the marks as JSON to ``path`` (the bench reads them back)."""

    def __init__(self, path: str, warmup: int, steps: int) -> None:
        self.path = Path(path)
        self.warmup = warmup
        self.total = warmup + steps
        self.times = StepTimes()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.times.new_epoch()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.times.batch_ready(len(batch["A"]))

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.times.batch_done(pl_module.device, self.warmup, self.total)
        if len(self.times.done) >= self.total:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.path.write_text(json.dumps(asdict(self.times)))


def _proc_status_kb(field_name: str) -> int:
    match = re.search(rf"^{field_name}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    if match is None:
        raise OSError(f"no {field_name} in /proc/self/status")
    return int(match.group(1))


class PeakMemory:
    """Peak memory of one run in MiB: CUDA max allocated, or peak RSS growth on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._start_kb: int | None = None

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            # Hand freed heap back first, so memory cached from the previous run does not
            # hide this run's growth; then reset the high-water mark to the current RSS.
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")
            self._start_kb = _proc_status_kb("VmRSS")
        except OSError:
            self._start_kb = None

    def peak_mib(self) -> float | None:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self._start_kb is None:
            return None
        return (_proc_status_kb("VmHWM") - self._start_kb) / 1024
