"""Build everything a run needs from the composed config, train, and report the metric."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from pix2pix_lit.errors import ConfigError, UserError

log = logging.getLogger(__name__)


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


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (and optionally test) the configured task; return the final metrics as floats."""
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
    log.info("Test-time protocol for validation: inference=%s", task.inference)

    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers: list[Logger] = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(task.run_config)

    if cfg.get("train", True):
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = dict(trainer.callback_metrics)
    if cfg.get("test", False):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(task, datamodule=datamodule, ckpt_path=best or None)
        metrics.update(trainer.callback_metrics)
    return {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}


def monitored_metric(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a sweeper optimises (``optimized_metric``)."""
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(
            f"optimized_metric={name!r} was not logged; logged metrics: {', '.join(sorted(metrics))}"
        )
    return metrics[name]
