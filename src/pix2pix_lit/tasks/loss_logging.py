"""The training losses of a task: each step's values for the loggers, the epoch's means.

Lightning's ``self.log`` costs host time for every value and call, more than the step of the
GPU target allows when the losses are logged every step (experiments/throughput/README.md,
"Logging"). So the step values go to ``self.log`` only on the steps the loggers write, and the
epoch means are running sums on the device, reduced across processes once per epoch. No host
sync.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor


def loggers_write_this_step(trainer: L.Trainer) -> bool:
    """Whether Lightning writes the values logged in this training step to the loggers.

    Lightning's own test (its logger connector's, private), from the trainer's public state:
    every ``log_every_n_steps``-th batch counted over all epochs, every batch when stopping,
    every batch of a ``fast_dev_run``. Lightning counts the batches itself, in a private
    counter that equals this public one in fresh runs and in runs resumed from checkpoints
    written between batches (``last.ckpt``, every checkpoint callback's); in a run resumed
    from one written during a step (``before_nonfinite.ckpt``) it counts the interrupted batch
    as done, one more than this count, so the two choose other steps (the epoch means are
    unaffected).
    """
    if trainer.fast_dev_run:
        return True
    every = trainer.log_every_n_steps
    if every == 0:
        return False
    batches = trainer.fit_loop.total_batch_idx + 1  # this one included
    return batches % every == 0 or trainer.should_stop


class LossLog:
    """Training losses as ``train/<name>_step`` (this process's, on the steps the loggers
    write) and ``train/<name>_epoch`` (the epoch's mean over all processes and samples, logged
    when the epoch ends). The running sums are training state: checkpoints carry them, so a
    run resumed mid-epoch still reports the whole epoch's mean."""

    def __init__(self) -> None:
        # sums of epoch `epoch`'s losses weighted by batch size (tensors on the device), and
        # the number of samples in them
        self.epoch = -1
        self.sums: dict[str, Tensor] = {}
        self.samples = 0

    def add(self, task: L.LightningModule, logs: dict[str, Tensor], batch_size: int) -> None:
        """Count one batch's losses ``logs`` (0-d tensors) of ``batch_size`` samples."""
        if self.epoch != task.current_epoch:
            self.epoch, self.sums, self.samples = task.current_epoch, {}, 0
        for name, value in logs.items():
            weighted = value.detach().float() * batch_size
            self.sums[name] = self.sums.get(name, 0) + weighted
        self.samples += batch_size
        if loggers_write_this_step(task.trainer):
            task.log_dict(
                {f"train/{k}_step": v.detach() for k, v in logs.items()},
                on_step=True,
                on_epoch=False,
            )

    def log_epoch_means(self, task: L.LightningModule) -> None:
        """Log the means of the epoch that ends (nothing when no batch of it counted)."""
        if self.epoch == task.current_epoch and self.samples:
            means = {f"train/{k}_epoch": v / self.samples for k, v in self.sums.items()}
            task.log_dict(means, on_step=False, on_epoch=True, sync_dist=True)

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "sums": {k: v.detach().cpu() for k, v in self.sums.items()},
            "samples": self.samples,
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.epoch, self.samples = state["epoch"], state["samples"]
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
