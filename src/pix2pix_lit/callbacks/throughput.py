"""Training speed in images per second, logged with the losses, so W&B (or the CSV) shows
it for every run without running the benchmark."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import lightning as L
from torch import Tensor


def batch_size(batch: Any) -> int:
    """Images in a batch: the length of its first tensor (``A`` of this project's batches)."""
    values = batch.values() if isinstance(batch, Mapping) else batch
    return next(len(v) for v in values if isinstance(v, Tensor))


class ThroughputCallback(L.Callback):
    """Logs ``train/img_per_s`` on every logging step (``trainer.log_every_n_steps``): the
    training images of all processes per second of wall time since the previous logging
    step; and ``train/img_per_s_epoch`` once per epoch. Validation time is left out.

    Unlike Lightning's ``ThroughputMonitor`` it never waits for the GPU (that one calls
    ``torch.cuda.synchronize`` after every batch, a host sync per step): the clock is read
    when the host gets to a logging step, which can run a few steps ahead of the device, an
    error that shrinks with the window's length.
    """

    def __init__(self) -> None:
        self._window_start = 0.0
        self._window_images = 0
        self._epoch_start = 0.0
        self._epoch_images = 0
        self._paused_at: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._window_start = self._epoch_start = time.perf_counter()
        self._window_images = self._epoch_images = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        images = batch_size(batch) * trainer.world_size
        self._window_images += images
        self._epoch_images += images
        if trainer._logger_connector.should_update_logs:
            now = time.perf_counter()
            rate = self._window_images / max(now - self._window_start, 1e-9)
            pl_module.log("train/img_per_s", rate, on_step=True, on_epoch=False)
            self._window_start, self._window_images = now, 0

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._paused_at = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._paused_at is not None:
            paused = time.perf_counter() - self._paused_at
            self._window_start += paused
            self._epoch_start += paused
            self._paused_at = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        elapsed = max(time.perf_counter() - self._epoch_start, 1e-9)
        pl_module.log("train/img_per_s_epoch", self._epoch_images / elapsed, on_epoch=True)
