"""Build everything a run needs from the composed config, train, test, and record the final
metrics."""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from omegaconf import DictConfig, OmegaConf

from pix2pix_lit.config import instantiate, validate_config
from pix2pix_lit.errors import DataError, UserError
from pix2pix_lit.hardware import slow_precision_warning
from pix2pix_lit.launching.sweep_job import isolated_run
from pix2pix_lit.tasks.network_checks import check_input_size
from pix2pix_lit.training.resume import check_resume_config, resolve_ckpt_path
from pix2pix_lit.training.run_folder import (
    FINAL_METRICS_FILE,
    own_run_folder,
    refuse_to_overwrite_checkpoints,
    write_record,
)
from pix2pix_lit.training.storage import AtomicCheckpointIO, write_atomically

log = logging.getLogger(__name__)


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a dict-of-configs group (callbacks, logger)."""
    if not cfg:
        return []
    return [instantiate(node) for node in cfg.values() if node and "_target_" in node]


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
        first = str(err).splitlines()[0]
        raise DataError(
            f"a data-loader worker died: {first.rstrip('. ')}. {worker_death_cause(first)}"
        ) from None


def worker_death_cause(message: str) -> str:
    """What most likely ended a data-loader worker, from torch's message about it."""
    # torch names the signal when it caught it: SIGKILL ("Killed") is the OOM killer's as a
    # rule (as is a worker that just vanished); any other came from outside the run
    stopped = re.search(r"killed by signal: (\w+)", message)
    if stopped and stopped.group(1) != "Killed":
        return "It was stopped from outside the run; resume it with ckpt_path=auto"
    return (
        "This is usually the system running out of memory: lower data.num_workers or "
        "data.batch_size"
    )


def train(
    cfg: DictConfig, before_training: Callable[[DictConfig], None] | None = None
) -> dict[str, float]:
    """Fit (and optionally test) the configured task; return the final metrics as floats.

    ``before_training`` runs once the run folder has accepted the run (the entry point's
    extras, which write ``config_tree.log`` there): a refused start writes nothing."""
    with isolated_run():
        return _train(cfg, before_training)


def _train(
    cfg: DictConfig, before_training: Callable[[DictConfig], None] | None = None
) -> dict[str, float]:
    run_dir = Path(cfg.paths.output_dir)
    with own_run_folder(run_dir):
        # A new folder gets its record at once: a job that fails to start still says what it
        # ran (and a sweep's report lists it). A folder with a record keeps it until this run
        # is accepted (below and in _fit_and_test).
        write_record(run_dir, cfg, keep_existing=True)
        validate_config(cfg)
        ckpt_path = None
        if cfg.get("train", True):
            ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), run_dir)
            if ckpt_path is None:
                refuse_to_overwrite_checkpoints(run_dir)
            else:
                check_resume_config(ckpt_path, cfg)
        if before_training is not None:
            before_training(cfg)
        return _fit_and_test(cfg, ckpt_path)


def _fit_and_test(cfg: DictConfig, ckpt_path: str | None) -> dict[str, float]:
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
    if "crop" in str(cfg.data.get("preprocess", "crop")) and cfg.data.get("crop_size"):
        check_input_size(task, cfg.data.crop_size)
    task.run_config = OmegaConf.to_container(cfg, resolve=True)
    if hasattr(task, "inference"):  # translation tasks (a segmenter has no test-time protocol)
        log.info("Test-time protocol for validation: inference=%s", task.inference)

    callbacks = instantiate_group(cfg.get("callbacks"))
    if not cfg.trainer.get("enable_progress_bar", True):
        # trainer.enable_progress_bar=false wins over a preset's bar (perf=gpu sets its refresh
        # rate); Lightning refuses a progress-bar callback with the bar disabled
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers: list[Logger] = instantiate_group(cfg.get("logger"))
    slow = slow_precision_warning(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    if slow:
        log.warning(slow)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    trainer.strategy.checkpoint_io = AtomicCheckpointIO()
    # the run is accepted: record what it runs (Hydra's own record is turned off, see run_folder)
    write_record(cfg.paths.output_dir, cfg, keep_existing=not cfg.get("train", True))
    for logger in loggers:
        logger.log_hyperparams(task.run_config)

    with explain_loader_failures():
        if cfg.get("train", True):
            with warnings.catch_warnings():
                if saves_loader_position(datamodule):
                    # Lightning warns on every mid-epoch resume unless the DataLoader object
                    # has a state_dict; this datamodule saves its sampler's position instead
                    # (ResumableRandomSampler), which makes the resume exact.
                    warnings.filterwarnings(
                        "ignore", "You're resuming from a checkpoint that ended before the epoch",
                        PossibleUserWarning,
                    )  # fmt: skip
                trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics = dict(trainer.callback_metrics)
        if cfg.get("test", False):
            checkpoint = trainer.checkpoint_callback
            best = checkpoint.best_model_path if checkpoint else ""
            trainer.test(task, datamodule=datamodule, ckpt_path=best or None)
            metrics.update(trainer.callback_metrics)
    scalars = {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
    return record_final_metrics(scalars, cfg.paths.output_dir, write=trainer.is_global_zero)


def saves_loader_position(datamodule: L.LightningDataModule) -> bool:
    """Whether ``datamodule`` checkpoints its position in the epoch (its own ``state_dict``)."""
    return type(datamodule).state_dict is not L.LightningDataModule.state_dict


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
        write_atomically(path, json.dumps(merged, indent=2, sort_keys=True).encode())
    return merged
