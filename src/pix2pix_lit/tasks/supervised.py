"""What the one-network supervised tasks (the segmenter, the digit classifier) share: one
optimizer stepped by Lightning, the run config in every checkpoint, exact resumes."""

from __future__ import annotations

from typing import Any

import lightning as L
from torch import nn

from pix2pix_lit.checkpoint_file import CONFIG_KEY
from pix2pix_lit.tasks.optimizers import (
    OptimizerFactory,
    SchedulerFactory,
    apply_config_to_restored_states,
)
from pix2pix_lit.tasks.rng_states import collect_rng_states, restore_rng_states


class SupervisedTask(L.LightningModule):
    """``network`` trained by one optimizer (Lightning's automatic optimization); the
    schedule is stepped per epoch.

    Checkpoints carry the run config (as every task's do: the FCN-score and the DTN rebuild
    the network from it) and the random generators' states (for exact resumes). A resumed
    run trains with its own optimizer settings, the ones ``resume.allow`` let change.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.run_config: dict[str, Any] | None = None

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer(self.network.parameters())
        if self.scheduler is None:
            return [optimizer]
        return [optimizer], [self.scheduler(optimizer)]

    def on_train_start(self) -> None:
        if self.trainer.ckpt_path is not None:
            apply_config_to_restored_states(self)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        checkpoint["rng_states"] = collect_rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the run's own config wins, as in TranslationTask: it holds the changes resume.allow
        # let through, and later checkpoints must store what is now trained
        if self.run_config is None:
            self.run_config = checkpoint.get(CONFIG_KEY)
        if "rng_states" in checkpoint:
            restore_rng_states(checkpoint["rng_states"])
