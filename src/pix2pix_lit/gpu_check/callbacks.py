"""Callbacks the gpu-check stages add to ``python -m pix2pix_lit.train`` runs.

:class:`CountSyncs` counts the host-device synchronisations of each training step with
``torch.cuda.set_sync_debug_mode("warn")``; :class:`EpochClock` records when each epoch starts,
for the extrapolation of a training's wall time. Each writes JSON to ``path`` when training ends.
"""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import lightning as L
import torch

#: What torch's sync debug mode warns on every synchronising CUDA call.
SYNC_WARNING = "called a synchronizing CUDA operation"


class CountSyncs(L.Callback):
    """Synchronisations per training step (from one batch start to the next: the step, both
    optimizers, logging, fetching the next batch), after ``skip`` steps of warm-up, and the
    Python lines that caused them."""

    def __init__(self, path: str, skip: int = 3) -> None:
        self.path = Path(path)
        self.skip = skip
        self.per_step: list[int] = []
        self.sites: Counter[str] = Counter()
        self._catcher: warnings.catch_warnings | None = None
        self._caught: list[warnings.WarningMessage] = []
        self._seen = 0

    def _syncs(self) -> list[warnings.WarningMessage]:
        return [w for w in self._caught if SYNC_WARNING in str(w.message)]

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx == self.skip and torch.cuda.is_available():
            self._catcher = warnings.catch_warnings(record=True)
            self._caught = self._catcher.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
        elif batch_idx > self.skip:
            syncs = len(self._syncs())
            self.per_step.append(syncs - self._seen)
            self._seen = syncs

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._catcher is not None:
            torch.cuda.set_sync_debug_mode("default")
            for w in self._syncs():
                self.sites["/".join(Path(w.filename).parts[-2:]) + f":{w.lineno}"] += 1
            self._catcher.__exit__(None, None, None)
        report = {
            "cuda": torch.cuda.is_available(),
            "per_step": self.per_step,
            "sites": dict(self.sites.most_common()),
        }
        self.path.write_text(json.dumps(report, indent=2))


class EpochClock(L.Callback):
    """Wall-clock time (``time.time``) at each training epoch's start and at the end of
    training, and the size of the training set: an epoch runs from its start to the next
    one's, its validation and checkpointing included."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.starts: list[float] = []
        self.images = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.starts.append(time.time())
        self.images = len(trainer.train_dataloader.dataset)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report = {"epoch_starts": self.starts, "end": time.time(), "images": self.images}
        self.path.write_text(json.dumps(report, indent=2))
