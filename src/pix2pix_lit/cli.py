"""What every command-line entry point shares: one-line errors instead of tracebacks."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

from pix2pix_lit.errors import UserError
from pix2pix_lit.launching.sweep_job import in_sweep

T = TypeVar("T")

log = logging.getLogger(__name__)


def exits_on_user_error(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """Wrap a Hydra task function: a :class:`UserError` ends the process with the one-line
    message ``error: …`` on stderr and exit status 1, rather than a traceback.

    In a sweep (``-m``) the error is logged to the job's log and raised instead: Hydra then
    marks that job failed, runs the other jobs, and reports the failure when the sweep ends.
    Exiting would end the whole sweep at the first failed job.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> T:
        try:
            return task(cfg)
        except UserError as err:
            if not in_sweep():
                sys.exit(f"error: {err}")
            log.error("error: %s", err)
            # without its traceback: Hydra prints it under the job's overrides at the end
            raise err.with_traceback(None) from None

    return wrapper
