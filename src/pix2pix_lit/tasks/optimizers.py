"""The two optimizers of a translation task (generator side, discriminator side) and their
per-epoch schedules: building them from the config's factories, stepping the schedules, and
putting this run's settings into the states a resume restored."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import lightning as L
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks.lin import clip_rho_after_steps

if TYPE_CHECKING:
    from pix2pix_lit.tasks.base import TranslationTask

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
SchedulerFactory = Callable[[Optimizer], LRScheduler]


def build_optimizers(task: TranslationTask) -> list[Optimizer]:
    """[generator side's, discriminator side's] optimizer, fresh from the config's factories."""
    return [
        task.optimizer_g(task.generator_parameters()),
        task.optimizer_d(task.discriminator_parameters()),
    ]


def configure_optimizers(task: TranslationTask) -> Any:
    """What ``LightningModule.configure_optimizers`` returns: both optimizers, with a
    scheduler each when the config has one. Layers whose parameters are constrained after
    every step (U-GAT-IT's ρ in [0, 1]) get their constraint on the optimizer that trains
    them."""
    optimizers = build_optimizers(task)
    for optimizer in optimizers:
        clip_rho_after_steps(optimizer, task.modules())
    if task.scheduler is None:
        return optimizers
    return optimizers, [task.scheduler(opt) for opt in optimizers]


def step_schedules(task: TranslationTask) -> None:
    """Log each optimizer's rate (``train/lr_G``, ``train/lr_D``) and step the schedules.

    Manual optimization leaves scheduling to the task; the paper's schedule is per epoch. The
    rates are logged here rather than by LearningRateMonitor, which refuses to run without a
    logger (logger=none).
    """
    for name, opt in zip(("G", "D"), task.optimizers(), strict=True):
        task.log(f"train/lr_{name}", opt.param_groups[0]["lr"], on_epoch=True)
    schedulers = task.lr_schedulers()
    if schedulers is None:
        return
    for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
        scheduler.step()


def apply_config_to_restored_states(task: L.LightningModule) -> None:
    """Put this run's optimizer and scheduler settings into the states a resume restored.

    Lightning restores each optimizer's parameter groups (learning rate, betas, weight
    decay…) and each scheduler (base rates, schedule) as they were saved, so a setting
    changed on resume (``resume.allow=[optim.lr]``) would be silently ignored. Here the
    settings come from optimizers and schedulers built afresh from the config by
    ``task.configure_optimizers()`` (every task's returns a list of optimizers, or that list
    and one of schedulers); the learning rate is the new schedule's at the restored epoch.
    Without changes this reproduces the restored values exactly. Every task calls it when a
    resumed training starts (``on_train_start``): the translation tasks, the segmenter and
    the digit classifier.
    """
    configured = task.configure_optimizers()
    fresh, fresh_schedulers = configured if isinstance(configured, tuple) else (configured, [])
    trainer = task.trainer
    for restored, new in zip(trainer.optimizers, fresh, strict=True):
        for group, new_group in zip(restored.param_groups, new.param_groups, strict=True):
            group.update({k: v for k, v in new_group.items() if k != "params"})
    for config, new_scheduler in zip(trainer.lr_scheduler_configs, fresh_schedulers, strict=True):
        restored = config.scheduler
        counters = {"last_epoch": restored.last_epoch, "_step_count": restored._step_count}
        restored.load_state_dict({**new_scheduler.state_dict(), **counters})
        if not isinstance(restored, LambdaLR):
            raise ConfigError(
                f"resuming with scheduler {type(restored).__name__}: only LambdaLR schedules "
                "(scheduler=linear_decay, constant) can take this run's settings on resume"
            )
        rates = [base * factor(restored.last_epoch)
                 for base, factor in zip(restored.base_lrs, restored.lr_lambdas, strict=True)]  # fmt: skip
        for group, rate in zip(restored.optimizer.param_groups, rates, strict=True):
            group["lr"] = rate
        restored._last_lr = rates
