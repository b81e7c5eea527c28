"""The wall time a run has spent training, over all the sessions that resumed it."""

from __future__ import annotations

import time
from typing import Any

import lightning as L

ELAPSED_KEY = "time/elapsed_s"


class ElapsedTime(L.Callback):
    """Logs ``time/elapsed_s`` at the end of every training epoch: the seconds of wall time the
    run has spent in ``fit`` (training and validation) up to that point, in all its sessions.

    The count is stored in each checkpoint and a resumed session goes on from it, so neither
    the time between sessions nor the work of a session after its last checkpoint (done again
    by the next) is counted: it is the time the run's progress took. (The time of a run folder's
    files would count both; Lightning's ``Timer`` keeps such a count too, but a ``Timer`` in the
    callbacks makes the Trainer ignore ``trainer.max_time``.)
    """

    def __init__(self) -> None:
        self._before = 0.0  # seconds of the sessions before this one, from the checkpoint
        self._session_start: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._session_start = time.monotonic()

    def elapsed(self) -> float:
        """Seconds spent so far, this session included."""
        if self._session_start is None:
            return self._before
        return self._before + time.monotonic() - self._session_start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log(ELAPSED_KEY, self.elapsed(), on_step=False, on_epoch=True)

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed_s": self.elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._before = float(state_dict["elapsed_s"])
