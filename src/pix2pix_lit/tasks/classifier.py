"""A digit classifier: the DTN's encoder f (trained on the source) and its evaluator C_T
(trained on the target) are both one of these, trained on labelled digits."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from pix2pix_lit.checkpoint_file import CONFIG_KEY
from pix2pix_lit.tasks.optimizers import (
    OptimizerFactory,
    SchedulerFactory,
    apply_config_to_restored_states,
)
from pix2pix_lit.tasks.rng_states import collect_rng_states, restore_rng_states


class DigitClassifierTask(L.LightningModule):
    """Cross-entropy training of ``network`` on ``{"image", "label"}`` batches.

    Logs ``train/loss_step``/``_epoch``, ``val/accuracy`` and ``test/accuracy`` (fraction of
    correct argmax predictions). Checkpoints carry the run config (as every task's do), which
    the DTN reads to rebuild f and C_T. One optimizer, stepped by Lightning; the schedule is
    stepped per epoch.
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
        self.val_accuracy = MeanMetric()
        self.test_accuracy = MeanMetric()

    def forward(self, images: Tensor) -> Tensor:
        return self.network(images)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer(self.network.parameters())
        if self.scheduler is None:
            return [optimizer]
        return [optimizer], [self.scheduler(optimizer)]

    def on_train_start(self) -> None:
        if self.trainer.ckpt_path is not None:
            apply_config_to_restored_states(self)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = F.cross_entropy(self.network(batch["image"]), batch["label"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(batch["label"]))
        return loss

    def _accuracy(self, batch: dict[str, Any], metric: MeanMetric, name: str) -> None:
        correct = (self.network(batch["image"]).argmax(1) == batch["label"]).float()
        metric.update(correct)
        self.log(name, metric, on_step=False, on_epoch=True, batch_size=len(correct))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._accuracy(batch, self.val_accuracy, "val/accuracy")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._accuracy(batch, self.test_accuracy, "test/accuracy")

    def grid_columns(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The fixed validation images (the image-grid callback shows every task's)."""
        return {"image": batch["image"]}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # as TranslationTask does: the config to rebuild the network, and the generators'
        # states for exact resumes
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
