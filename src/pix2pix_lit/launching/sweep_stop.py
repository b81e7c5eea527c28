"""Stopping a parallel sweep as one: every running job saves, no worker outlives the launcher.

``hydra/launcher=local_parallel`` runs its jobs in joblib (loky) worker processes. Without
this, a SIGTERM to the launcher alone ended it and left its workers training on, orphaned,
into the sweep's folders, where the same sweep run again with ``ckpt_path=auto`` would start a
second process on a job still running; and a SIGTERM to one worker ended the sweep through
joblib's abort, which kills the other workers wherever they are, losing what they trained
since their last checkpoint.

With it, a SIGTERM or the first Ctrl+C to the launcher, or a SIGTERM to any of its workers,
stops the whole sweep the same way: each running job gets a SIGTERM, stops after its batch and
saves a resumable ``last.ckpt`` (:class:`~pix2pix_lit.callbacks.EmergencyCheckpoint`); the
launcher waits until every job has stopped (at most ``STOP_TIMEOUT_S``), then ends the sweep
with exit status 1. A second Ctrl+C ends it at once. Each worker says what it is doing in the
lock file of its device slot (:mod:`~pix2pix_lit.launching.slot_locks`): idle, running a
job, or stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

from lightning.pytorch.utilities.exceptions import SIGTERMException

from pix2pix_lit.launching.slot_locks import (
    IDLE,
    RUNNING,
    STOPPED,
    set_slot_state,
    slot_holders,
    slot_state,
)

log = logging.getLogger(__name__)

# The launcher's process id, for a worker stopped on its own to stop the sweep.
LAUNCHER_ENV = "PIX2PIX_SWEEP_LAUNCHER"
# How long the launcher waits for its jobs' checkpoints: a batch and a save, with room for a
# slow disk; past it the sweep ends without the checkpoints still missing.
STOP_TIMEOUT_S = 300.0
POLL_S = 0.2


class SweepStop:
    """The launcher's side: its SIGTERM and SIGINT handlers while the sweep runs.

    Args:
        lock_dir: the sweep's folder of device-slot lock files.
    """

    def __init__(self, lock_dir: Path) -> None:
        self.lock_dir = lock_dir
        self.stopping = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        os.environ[LAUNCHER_ENV] = str(os.getpid())  # the workers, started later, inherit it
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def running_jobs(self) -> list[int]:
        """The worker processes running a job now."""
        return [pid for pid, state in slot_holders(self.lock_dir).items() if state == RUNNING]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl+C: at once, without checkpoints
            return  # the stop under way already covers it
        self.stopping = True
        log.warning(
            "%s: stopping the sweep; each running job stops after its batch and saves a "
            "checkpoint (Ctrl+C again to stop at once, without them)",
            signal.Signals(signum).name,
        )
        for pid in self.running_jobs():
            with contextlib.suppress(ProcessLookupError):  # it ended in between
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.running_jobs():
            if time.monotonic() > deadline:
                log.warning(
                    "Jobs still running %.0f s after the stop (processes %s): ending the "
                    "sweep without their checkpoints",
                    STOP_TIMEOUT_S,
                    ", ".join(map(str, self.running_jobs())),
                )
                break
            time.sleep(POLL_S)
        # Raised in whatever the launcher was doing (joblib's wait for results), whose abort
        # then ends the now idle workers.
        raise SystemExit(
            "the sweep was stopped: its jobs saved resumable checkpoints; run the same "
            "command with hydra.sweep.dir=<this sweep's folder> ckpt_path=auto to resume it"
        )


def start_job() -> None:
    """In a worker holding a slot, as a job starts: mark it running, and refuse to start one
    once the sweep is stopping (the worker took the next job before the launcher ended it)."""
    if slot_state() == STOPPED:
        raise RuntimeError("the sweep is stopping (a SIGTERM); this job was not started")
    if signal.getsignal(signal.SIGTERM) is not _on_worker_sigterm:
        # Lightning's own handler, installed while a Trainer runs, calls this one after it
        signal.signal(signal.SIGTERM, _on_worker_sigterm)
    set_slot_state(RUNNING)


def end_job() -> None:
    """In a worker, as a job ends on its own: idle again."""
    if slot_state() == RUNNING:
        set_slot_state(IDLE)


def job_stopped() -> None:
    """In a worker whose job a SIGTERM stopped, once its checkpoint is saved: mark the slot
    stopped and have the launcher stop the rest of the sweep. Nothing outside a sweep worker."""
    if slot_state() is None:
        return
    set_slot_state(STOPPED)
    launcher = os.environ.get(LAUNCHER_ENV)
    if launcher and int(launcher) != os.getpid():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(launcher), signal.SIGTERM)


def _on_worker_sigterm(signum: int, frame: FrameType | None) -> None:
    if signal.getsignal(signal.SIGTERM) is not _on_worker_sigterm:
        return  # called by Lightning's handler: the Trainer stops after its batch and saves
    if slot_state() == RUNNING:
        # a job between its Trainer's stages (set-up, testing, the record): stop it as
        # Lightning would, through the entry point's handling of the SIGTERM
        raise SIGTERMException
    job_stopped()  # idle: nothing to save
