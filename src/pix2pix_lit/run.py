"""Build everything a run needs from the composed config, train, and report the metric."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from pix2pix_lit.config import validate_config
from pix2pix_lit.errors import ConfigError, DataError, UserError

log = logging.getLogger(__name__)

#: The final metrics of a run, in its run folder (``metrics.json`` is the evaluation's).
FINAL_METRICS_FILE = "final_metrics.json"


def instantiate(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets a :class:`UserError` raised by a constructor
    through as itself (Hydra wraps it), so the entry point can print its one-line message."""
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a dict-of-configs group (callbacks, logger)."""
    if not cfg:
        return []
    return [instantiate(node) for node in cfg.values() if node and "_target_" in node]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """``last`` → the run dir's ``checkpoints/last.ckpt`` (which must exist); ``auto`` → the
    same when it exists, else a fresh start (for requeued jobs: the first attempt starts,
    the next ones resume); a path must exist."""
    if ckpt_path is None:
        return None
    if ckpt_path in ("last", "auto"):
        path = Path(output_dir) / "checkpoints" / "last.ckpt"
        if ckpt_path == "auto":
            return str(path) if path.is_file() else None
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


def refuse_to_overwrite_checkpoints(output_dir: str | Path) -> None:
    """Stop a fresh start in a run dir that holds an earlier run's checkpoints, which it
    would overwrite (``hydra.run.dir`` pointed at an old run without ``ckpt_path``)."""
    folder = Path(output_dir) / "checkpoints"
    found = sorted(p.name for p in folder.glob("*.ckpt"))
    if found:
        raise ConfigError(
            f"{folder} already holds {', '.join(found)} from an earlier run, which a fresh "
            "start would overwrite; resume that run with ckpt_path=last (or a .ckpt file), "
            "or train into another hydra.run.dir"
        )


@contextmanager
def explain_loader_failures() -> Iterator[None]:
    """Turn data-loader worker failures into one-line errors that say what happened.

    A worker killed by the system (usually out of memory) surfaces in torch as a bare
    RuntimeError; an error raised inside a worker is re-raised with the worker's traceback
    folded into its message. Both become a :class:`DataError` with the cause on one line.
    """
    try:
        yield
    except UserError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        if len(lines) < 2 or "DataLoader worker" not in lines[0]:
            raise
        # the last line is the worker's "package.module.ErrorType: message"
        message = lines[-1].removeprefix(f"{type(err).__module__}.{type(err).__qualname__}: ")
        raise type(err)(f"{message} (in a data-loader worker)") from None
    except RuntimeError as err:
        if "DataLoader worker" not in str(err):
            raise
        raise DataError(
            f"a data-loader worker died: {str(err).splitlines()[0]}. This is usually the "
            "system running out of memory: lower data.num_workers or data.batch_size"
        ) from None


@contextmanager
def isolated_run() -> Iterator[None]:
    """Leave the process as the run found it, so the next job of a sweep in this process
    starts afresh: the environment variables the run set are undone (Lightning's DDP launcher
    sets ``MASTER_PORT``, ``LOCAL_RANK``, ``WORLD_SIZE``…; with ``LOCAL_RANK`` left set,
    Lightning would take the next job for one whose processes a cluster starts), and the
    process group of a DDP run is closed (the next job would reuse it, with peers gone)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (and optionally test) the configured task; return the final metrics as floats."""
    with isolated_run():
        return _train(cfg)


def _train(cfg: DictConfig) -> dict[str, float]:
    validate_config(cfg)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), cfg.paths.output_dir)
    if ckpt_path is None and cfg.get("train", True):
        refuse_to_overwrite_checkpoints(cfg.paths.output_dir)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    log.info("Data: %s", cfg.data._target_)
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    log.info(
        "Task: %s (generator %s, discriminator %s)",
        cfg.task._target_,
        cfg.model._target_,
        cfg.discriminator._target_,
    )
    task: L.LightningModule = instantiate(cfg.task)
    task.run_config = OmegaConf.to_container(cfg, resolve=True)
    if hasattr(task, "inference"):  # translation tasks (not the digit classifier)
        log.info("Test-time protocol for validation: inference=%s", task.inference)

    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers: list[Logger] = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(task.run_config)

    with explain_loader_failures():
        if cfg.get("train", True):
            trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics = dict(trainer.callback_metrics)
        if cfg.get("test", False):
            checkpoint = trainer.checkpoint_callback
            best = checkpoint.best_model_path if checkpoint else ""
            trainer.test(task, datamodule=datamodule, ckpt_path=best or None)
            metrics.update(trainer.callback_metrics)
    scalars = {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
    return record_final_metrics(scalars, cfg.paths.output_dir, write=trainer.is_global_zero)


def record_final_metrics(
    metrics: dict[str, float], run_dir: str | Path, write: bool = True
) -> dict[str, float]:
    """``metrics`` over those an earlier session of the same run recorded; written back to
    ``run_dir/final_metrics.json`` (by one process) and returned.

    A run resumed from the checkpoint it saved at its end (``ckpt_path=auto`` when a sweep is
    run again into its folder) has nothing left to train and logs nothing: its metrics are
    the recorded ones.
    """
    path = Path(run_dir) / FINAL_METRICS_FILE
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    merged = {**recorded, **metrics}
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")
        partial.write_text(json.dumps(merged, indent=2, sort_keys=True))
        os.replace(partial, path)
    return merged


def monitored_metric(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a sweeper optimises (``optimized_metric``)."""
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(
            f"optimized_metric={name!r} was not logged; logged metrics: {', '.join(sorted(metrics))}"
        )
    return metrics[name]
