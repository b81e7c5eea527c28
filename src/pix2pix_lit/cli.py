"""What every command-line entry point shares: one-line errors instead of tracebacks."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

from pix2pix_lit.errors import UserError

T = TypeVar("T")


def exits_on_user_error(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """Wrap a Hydra task function: a :class:`UserError` ends the process with the one-line
    message ``error: …`` on stderr and exit status 1, rather than a traceback."""

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> T:
        try:
            return task(cfg)
        except UserError as err:
            sys.exit(f"error: {err}")

    return wrapper
