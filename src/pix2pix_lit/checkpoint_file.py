"""The checkpoint file itself: the key holding a run's config, and reading a file safely.

Low in the package (torch and the errors only), so tasks, resume and the inference commands
all read checkpoints one way without importing each other.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from pix2pix_lit.errors import DataError

#: The entry of a training checkpoint that holds the run's fully resolved config.
CONFIG_KEY = "pix2pix_lit_config"
_MAX_LISTED_KEYS = 10


def first_line(err: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def list_keys(keys: list[str]) -> str:
    """At most the first ten ``keys``, and how many more there are."""
    listed = ", ".join(keys[:_MAX_LISTED_KEYS]) or "none"
    more = len(keys) - _MAX_LISTED_KEYS
    return listed + (f" and {more} more" if more > 0 else "")


def load_file(ckpt_path: str | Path) -> Any:
    """``torch.load`` on the CPU with ``weights_only=True`` (tensors and plain python types
    only), so a file from elsewhere cannot run code when it is opened. Both torch.save
    formats load: the reference's pretrained models predate the zip format."""
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(
            f"ckpt_path={path} {what}; pass a .ckpt file of a training run, e.g. "
            "logs/<task_name>/runs/<time>/checkpoints/last.ckpt"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        raise DataError(
            f"ckpt_path={path} is not a pix2pix_lit checkpoint nor a generator file of the "
            f"reference code: torch.load cannot read it ({first_line(err)})"
        ) from err


def epochs_trained(checkpoint: dict[str, Any]) -> int | None:
    """The whole epochs of training in a Lightning checkpoint (None: it records no epoch).

    ``epoch`` is the 0-based epoch the checkpoint was saved in. A checkpoint of an epoch's end
    has its last batch done; the emergency checkpoint of an interrupted run does not, and the
    unfinished epoch is not counted.
    """
    epoch = checkpoint.get("epoch")
    if epoch is None:
        return None
    batches = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress")
    return epoch if batches and not batches.get("is_last_batch", True) else epoch + 1


def read_checkpoint(ckpt_path: str | Path, contents: Any = None) -> dict[str, Any]:
    """A pix2pix_lit checkpoint's dict (``contents``, the loaded file, or the file read now),
    checking it is one."""
    checkpoint = load_file(ckpt_path) if contents is None else contents
    path = Path(ckpt_path).expanduser()
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint:
        keys = [str(k) for k in checkpoint] if isinstance(checkpoint, dict) else []
        raise DataError(
            f"ckpt_path={path} is not a pix2pix_lit checkpoint: it has no '{CONFIG_KEY}' entry "
            f"(its keys: {list_keys(keys)}); use a checkpoint written by pix2pix_lit.train, "
            "or a generator file of the reference code with model=<option>"
        )
    if "state_dict" not in checkpoint:
        raise DataError(f"ckpt_path={path} has '{CONFIG_KEY}' but no 'state_dict' (no weights)")
    return checkpoint
