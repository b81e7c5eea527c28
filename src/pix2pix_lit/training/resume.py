"""What a resumed run starts from, and whether the command may change the run's settings.

A checkpoint stores the config its run trained with (``pix2pix_lit_config``). A resume
compares the command's config with it: settings that change what is trained differ only
where the command allows it (``resume.allow=[trainer.max_epochs, optim.lr]``); every other
difference is refused, naming each key with both values. Allowed changes are applied for real
(each task's ``on_train_start`` puts learning rates and other optimizer and scheduler
settings into the restored states) and the command's config becomes the run's config, stored
in every later checkpoint and in ``.hydra/config.yaml``.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from pix2pix_lit.checkpoint_file import CONFIG_KEY, first_line
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.training.run_folder import CHECKPOINT_DIR

log = logging.getLogger(__name__)

#: Keys a resume may change freely: where files go, how data is loaded, what is logged and
#: how validation runs (validation leaves no trace in training, see docs/robustness.md).
#: A key matches itself and everything under it.
FREE_KEYS = (
    "ckpt_path", "resume", "train", "test", "optimized_metric", "tags", "task_name", "paths",
    "logger", "callbacks", "data.root", "data.download", "data.url", "data.sha256",
    "data.expected_counts", "data.num_workers", "data.pin_memory", "data.persistent_workers",
    "data.verify_images", "data.scan_cache", "data.scan_workers", "data.val_batch_size",
    "data.val_split", "data.val_fallback", "data.test_split",
    "trainer.default_root_dir", "trainer.enable_progress_bar", "trainer.enable_model_summary",
    "trainer.log_every_n_steps", "trainer.limit_val_batches", "trainer.num_sanity_val_steps",
    "trainer.check_val_every_n_epoch", "trainer.val_check_interval", "task.inference",
    "task.validation_seed",
)  # fmt: skip
#: where a checkpoint stores its run's config (TranslationTask.on_save_checkpoint)
_LISTED_CHANGES = 8
_ABSENT = "<absent>"
_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """``last`` → the run dir's ``checkpoints/last.ckpt`` (which must exist); ``auto`` → the
    newest intact checkpoint of the run dir when there is one, else a fresh start (for
    requeued jobs: the first attempt starts, the next ones resume); a path must exist."""
    if ckpt_path is None:
        return None
    folder = Path(output_dir) / CHECKPOINT_DIR
    if ckpt_path == "auto":
        return newest_intact_checkpoint(folder)
    if ckpt_path == "last":
        path = folder / "last.ckpt"
        if not path.is_file():
            raise ConfigError(
                f"ckpt_path=last: no checkpoint at {path}; resume a run in place with "
                "hydra.run.dir=<its run dir> ckpt_path=last, or give ckpt_path=<file>.ckpt"
            )
        return str(path)
    if not Path(ckpt_path).is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path} does not exist; give a .ckpt file, 'last' or 'auto'"
        )
    return ckpt_path


def newest_intact_checkpoint(folder: Path) -> str | None:
    """``last.ckpt`` when it reads; else the newest checkpoint of ``folder`` that reads, with
    a warning naming both (a job requeued after a crash that spoiled ``last.ckpt`` would
    otherwise fail on every attempt); None when the folder has no checkpoint."""
    last = folder / "last.ckpt"
    others = sorted(
        (p for p in folder.glob("*.ckpt") if p != last), key=lambda p: p.stat().st_mtime
    )
    candidates = ([last] if last.is_file() else []) + others[::-1]
    spoiled: list[tuple[Path, DataError]] = []
    for path in candidates:
        try:
            read_training_checkpoint(path)
        except DataError as err:
            spoiled.append((path, err))
            continue
        if spoiled:
            log.warning(
                "ckpt_path=auto: %s cannot resume (%s); resuming from %s, the newest intact "
                "checkpoint, instead", spoiled[0][0], spoiled[0][1], path,
            )  # fmt: skip
        return str(path)
    if spoiled:
        raise DataError(
            f"ckpt_path=auto: no checkpoint in {folder} can be read ({spoiled[0][1]}); move "
            "them away to start afresh, or give ckpt_path=<an intact .ckpt file>"
        )
    return None


def read_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint's dict, its tensors mapped from the file rather than read (no
    time, no memory: the config and counters are what is needed here); :class:`DataError`
    in one line when the file is cut short, is no pix2pix_lit checkpoint or holds the weights
    only."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        raise DataError(
            f"ckpt_path={path} is not a pix2pix_lit checkpoint: torch.load cannot read it "
            f"({first_line(err)}); a file cut short by a crash reads so"
        ) from err
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint:
        raise DataError(
            f"ckpt_path={path} is not a pix2pix_lit checkpoint: it has no '{CONFIG_KEY}' "
            "entry; resume from a checkpoint written by pix2pix_lit.train"
        )
    if "optimizer_states" not in checkpoint:
        raise DataError(
            f"ckpt_path={path} holds the weights only (saved with save_weights_only=true, as "
            "callbacks.periodic_checkpoint keeps them), without the optimizers' state to resume "
            "training; resume from the run's last.ckpt, or score these weights with "
            "python -m pix2pix_lit.evaluate"
        )
    return checkpoint


def check_resume_config(ckpt_path: str, cfg: DictConfig) -> dict[str, Any]:
    """Refuse to resume ``ckpt_path`` with settings that differ from its run's, except the
    keys of ``resume.allow``; return the checkpoint (without its tensors loaded)."""
    checkpoint = read_training_checkpoint(ckpt_path)
    changes = changed_keys(checkpoint[CONFIG_KEY], cfg)
    allow = list(OmegaConf.select(cfg, "resume.allow", default=None) or [])
    refused = [key for key in changes if not _matches(key, (*FREE_KEYS, *allow))]
    if refused:
        listed = ", ".join(changes[key] for key in refused[:_LISTED_CHANGES])
        more = len(refused) - _LISTED_CHANGES
        listed += f" and {more} more" if more > 0 else ""
        raise ConfigError(
            f"ckpt_path={ckpt_path} was trained with other settings: {listed}; resume with the "
            "run's settings (its .hydra/overrides.yaml), or change them on purpose with "
            f"resume.allow=[{','.join(refused)}]"
        )
    for key in changes:
        if not _matches(key, FREE_KEYS):
            log.info("Resuming with a changed setting (allowed by resume.allow): %s", changes[key])
    return checkpoint


def changed_keys(saved: dict[str, Any], cfg: DictConfig) -> dict[str, str]:
    """The settings in which ``cfg`` differs from the ``saved`` (resolved) config, as
    ``{key: "key=saved (now new)"}``, in key order. A value taken from another key by
    interpolation (``optim.generator.lr: ${optim.lr}``) counts as that key's change only."""
    current = OmegaConf.to_container(cfg, resolve=True)
    old, new = dict(_leaves(saved)), dict(_leaves(current))
    changed = {k for k in old.keys() | new.keys() if old.get(k, _ABSENT) != new.get(k, _ABSENT)}
    raw = dict(_leaves(OmegaConf.to_container(cfg, resolve=False)))
    return {
        key: f"{key}={old.get(key, _ABSENT)} (now {new.get(key, _ABSENT)})"
        for key in sorted(changed)
        if not _follows_from(key, raw, changed)
    }


def _follows_from(key: str, raw: dict[str, Any], changed: set[str]) -> bool:
    # the unresolved value at key, or at the nearest ancestor that is an interpolation
    parts = key.split(".")
    for depth in range(len(parts), 0, -1):
        value = raw.get(".".join(parts[:depth]))
        if isinstance(value, str | list) and "${" in str(value):
            references = _REFERENCE.findall(str(value))
            return any(_related(r, c) for r in references for c in changed if c != key)
    return False


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _matches(key: str, patterns: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in patterns)


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf; lists are leaves, empty dicts too."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node
