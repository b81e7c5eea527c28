"""A run folder belongs to one training process, and its record describes what that process
runs.

- **Ownership.** The process that trains into a folder holds an exclusive lock on its
  ``.owner.lock`` (``flock``: the system releases it when the process ends, killed or not, so
  no stale lock outlives its owner). A second training into the same folder is refused with
  one line naming the owner. Locks are per machine on most network file systems.
- **Nothing of an old run is rewritten by a refused start.** Hydra's own writing of
  ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` happens before the task
  function runs (``hydra.output_subdir=null`` turns it off for training, in ``conf/train.yaml``);
  :func:`write_record` writes the same three files once the run has been accepted: the folder
  is owned, a fresh start finds no earlier checkpoints, a resume's config agrees with its
  checkpoint's.
- :class:`RunFolderCheck` (a Hydra callback) stops a run whose folder cannot be made, e.g.
  ``paths.log_dir`` naming a file, before Hydra tries to make it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.training.storage import remove_partial_files, write_atomically

LOCK_FILE = ".owner.lock"
RECORD_DIR = ".hydra"
CHECKPOINT_DIR = "checkpoints"
#: The final metrics of a run, written when its training has ended (``metrics.json`` is the
#: evaluation's): a run folder without one is still running, or was stopped.
FINAL_METRICS_FILE = "final_metrics.json"
# set by launchers in every process of a multi-process (DDP) run; only the first owns the folder
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def is_first_process() -> bool:
    """Whether this is the first (or only) process of its run: the one that owns the folder."""
    return all(int(os.environ.get(name, "0") or 0) == 0 for name in _RANK_VARIABLES)


@contextmanager
def own_run_folder(run_dir: str | Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process while the block runs (in the first process of a
    multi-process run; the others train under its lock). Removes the partial files a killed
    writer left in it."""
    if not is_first_process():
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "a+")  # noqa: SIM115 (held open while the run lasts)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise ConfigError(
                f"run folder {run_dir} is in use by {owner}; wait for that training to end, or "
                "train into another hydra.run.dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        handle.write(f"process {os.getpid()} on {socket.gethostname()} (since {started})\n")
        handle.flush()
        remove_partial_files(run_dir / CHECKPOINT_DIR)
        remove_partial_files(run_dir)
        yield
    finally:
        handle.close()  # closing releases the lock


def refuse_to_overwrite_checkpoints(run_dir: str | Path) -> None:
    """Stop a fresh start in a run dir that holds an earlier run's checkpoints, which it
    would overwrite (``hydra.run.dir`` pointed at an old run without ``ckpt_path``)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    found = sorted(p.name for p in folder.glob("*.ckpt"))
    if found:
        raise ConfigError(
            f"{folder} already holds {', '.join(found)} from an earlier run, which a fresh "
            "start would overwrite; resume that run with ckpt_path=last (or a .ckpt file), "
            "or train into another hydra.run.dir"
        )


def write_record(run_dir: str | Path, cfg: DictConfig, keep_existing: bool = False) -> None:
    """Write Hydra's record of the run into ``run_dir/.hydra``, as Hydra would have: the
    config (``config.yaml``), Hydra's settings (``hydra.yaml``) and the command-line
    overrides (``overrides.yaml``). ``keep_existing``: leave a record already there (a
    session that does not train must not replace the record of the one that did). Nothing
    outside a Hydra run (the Python API)."""
    folder = Path(run_dir) / RECORD_DIR
    if not HydraConfig.initialized() or not is_first_process():
        return
    if keep_existing and (folder / "config.yaml").is_file():
        return
    hydra = HydraConfig.instance().cfg
    for name, node in (
        ("config.yaml", cfg),
        ("hydra.yaml", hydra),
        ("overrides.yaml", hydra.hydra.overrides.task),
    ):
        write_atomically(folder / name, OmegaConf.to_yaml(node).encode())


def blocking_file(folder: Path) -> Path | None:
    """The file standing where ``folder`` or one of its parents should be, if any."""
    for path in (folder, *folder.parents):
        if path.exists():
            return None if path.is_dir() else path
    return None


class RunFolderCheck(Callback):
    """Stops a run (or a sweep) whose output folder cannot be made, with one line, before
    Hydra tries to make it (which fails with a traceback)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")

    @staticmethod
    def _check(config: DictConfig, key: str) -> None:
        folder = Path(str(OmegaConf.select(config, key)))
        blocking = blocking_file(folder.absolute())
        if blocking is not None:
            # SystemExit: Hydra turns a callback's exceptions into warnings
            sys.exit(
                f"error: {key}={folder} cannot be made: {blocking} is a file, not a folder; "
                "set paths.log_dir (or hydra.run.dir) to a folder"
            )
