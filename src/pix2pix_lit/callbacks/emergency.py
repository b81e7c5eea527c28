"""Leave a checkpoint behind when training stops abnormally: signals and divergence."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from pix2pix_lit.errors import TrainingDivergedError

log = logging.getLogger(__name__)


class EmergencyCheckpoint(L.Callback):
    """Saves a checkpoint when training is interrupted by a signal or diverges.

    Lightning turns SIGTERM (preemption, ``scancel``, a cluster's time limit) into a stop at
    the end of the current batch. This callback routes the first Ctrl+C (SIGINT) the same
    way — a second one interrupts at once — and, when the stop arrives, writes a checkpoint
    of the state after that batch: weights, optimizers, schedulers, loop counters, the data
    sampler's position and the random generators. ``ckpt_path=last`` (or the file's path)
    resumes from it and finishes with exactly the weights of an uninterrupted run.

    When the task stops because its loss kept being non-finite
    (:class:`~pix2pix_lit.errors.TrainingDivergedError`), the weights are still those from
    before the fault (the faulty steps were skipped) and are saved to ``before_nonfinite.ckpt``
    for inspection or a restart with other settings.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self._previous_sigint: Any = None
        self._pid: int | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if _in_main_thread():
            self._pid = os.getpid()
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_sigint()

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            # a data-loader worker forked with this handler, reached by a terminal's Ctrl+C
            # as the whole group is: the run decides; stopping itself would end the run with
            # "a data-loader worker died" before the checkpoint is saved
            return
        log.warning("Interrupted: stopping after this batch and saving a checkpoint "
                    "(press Ctrl+C again to stop at once, without one).")  # fmt: skip
        self._restore_sigint()
        os.kill(os.getpid(), signal.SIGTERM)

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore_sigint()
        if isinstance(exception, SIGTERMException):
            path = self.dirpath / "last.ckpt"
        elif isinstance(exception, TrainingDivergedError):
            path = self.dirpath / "before_nonfinite.ckpt"
        else:
            return
        # a full, resumable checkpoint; saying so spares the log Lightning's note on the default
        trainer.save_checkpoint(path, weights_only=False)
        if trainer.is_global_zero:
            log.warning("Stopped early: saved %s (resume with ckpt_path=%s)", path, path)


def _in_main_thread() -> bool:
    # signal handlers can only be installed from the main thread
    return threading.current_thread() is threading.main_thread()
