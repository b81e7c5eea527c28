"""Rebuild a trained task from a training checkpoint, for evaluate, predict and export.

A checkpoint written by ``pix2pix_lit.train`` carries the fully resolved run config under
``pix2pix_lit_config``; its ``task`` entry instantiates the task with the same networks, and
the checkpoint's ``state_dict`` fills in their weights. No other file is needed.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from pix2pix_lit.errors import ConfigError, DataError

if TYPE_CHECKING:  # the DTN task reads checkpoints itself: a runtime import would be circular
    from pix2pix_lit.tasks.base import TranslationTask

CONFIG_KEY = "pix2pix_lit_config"
DEVICES = ("auto", "cpu", "cuda")
_MAX_LISTED_KEYS = 10


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _list_keys(keys: list[str]) -> str:
    listed = ", ".join(keys[:_MAX_LISTED_KEYS]) or "none"
    more = len(keys) - _MAX_LISTED_KEYS
    return listed + (f" and {more} more" if more > 0 else "")


def read_checkpoint(ckpt_path: str | Path) -> dict[str, Any]:
    """Load a pix2pix_lit checkpoint's dict on the CPU, checking it is one.

    Loaded with ``weights_only=True`` (tensors and plain python types only), so a checkpoint
    from elsewhere cannot run code when it is opened.
    """
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(
            f"ckpt_path={path} {what}; pass a .ckpt file of a training run, e.g. "
            "logs/<task_name>/runs/<time>/checkpoints/last.ckpt"
        )
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"ckpt_path={path} is not a pix2pix_lit checkpoint: it is not a file written by "
            "torch.save (those are zip archives); pass a .ckpt file of a training run"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        raise DataError(
            f"ckpt_path={path} is not a pix2pix_lit checkpoint: torch.load cannot read it "
            f"({_first_line(err)})"
        ) from err
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint:
        keys = [str(k) for k in checkpoint] if isinstance(checkpoint, dict) else []
        raise DataError(
            f"ckpt_path={path} is not a pix2pix_lit checkpoint: it has no '{CONFIG_KEY}' entry "
            f"(its keys: {_list_keys(keys)}); use a checkpoint written by pix2pix_lit.train"
        )
    if "state_dict" not in checkpoint:
        raise DataError(f"ckpt_path={path} has '{CONFIG_KEY}' but no 'state_dict' (no weights)")
    return checkpoint


def load_task(
    ckpt_path: str | Path, device: str | torch.device = "cpu", direction: str | None = None
) -> TranslationTask:
    """The task of a training checkpoint, with its weights, in eval mode on ``device``.

    ``task.run_config`` holds the run's config (``data``, ``model``, ``task``, ...).
    ``direction`` (``AtoB`` | ``BtoA``) picks the generator of a two-generator (unpaired)
    task; None keeps the checkpoint's.
    """
    checkpoint = read_checkpoint(ckpt_path)
    config = checkpoint[CONFIG_KEY]
    if "task" not in config:
        raise DataError(
            f"ckpt_path={ckpt_path}: its '{CONFIG_KEY}' has no 'task' entry "
            f"(keys: {_list_keys(list(config))}); it cannot be rebuilt"
        )
    task: TranslationTask = instantiate(OmegaConf.create(config["task"]))
    try:
        task.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise DataError(
            f"ckpt_path={ckpt_path}: its weights do not fit the networks its config builds "
            f"({_first_line(err)})"
        ) from err
    task.run_config = config
    if direction is not None:
        if not hasattr(task, "direction"):
            raise ConfigError(
                f"direction={direction}: the {type(task).__name__} task of ckpt_path={ckpt_path} "
                "has a single generator; leave direction unset (null)"
            )
        task.direction = direction
    return task.to(device).eval()


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``."""
    if name not in DEVICES:
        raise ConfigError(f"device={name!r} is not one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA GPU is available; use device=auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
