"""Logger construction that never blocks an unattended run."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info


def wandb_credentials_available() -> bool:
    """Whether W&B could log in without asking: an API key in the env or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1]
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_logger(save_dir: str | Path, offline: bool | None = None, **kwargs: Any) -> WandbLogger:
    """A :class:`WandbLogger` that runs offline unless W&B credentials are configured.

    ``offline=None`` decides from the environment: ``WANDB_MODE=offline|disabled`` or no
    API key → offline (the run is written under ``save_dir/wandb``; upload it later with
    ``wandb sync``). W&B is told never to prompt for a login.
    """
    os.environ.setdefault("WANDB_SILENT", "true")
    mode = os.environ.get("WANDB_MODE", "")
    if offline is None:
        offline = mode in ("offline", "dryrun", "disabled") or not wandb_credentials_available()
        if offline:
            rank_zero_info("W&B: no API key found, logging offline (upload with `wandb sync`).")
    if offline and mode != "disabled":
        os.environ["WANDB_MODE"] = "offline"
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(save_dir=str(save_dir), offline=offline, **kwargs)
