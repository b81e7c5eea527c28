"""A digit classifier: the DTN's encoder f (trained on the source) and its evaluator C_T
(trained on the target) are both one of these, trained on labelled digits."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from pix2pix_lit.tasks.optimizers import OptimizerFactory, SchedulerFactory
from pix2pix_lit.tasks.supervised import SupervisedTask


class DigitClassifierTask(SupervisedTask):
    """Cross-entropy training of ``network`` on ``{"image", "label"}`` batches.

    Logs ``train/loss_step``/``_epoch``, ``val/accuracy`` and ``test/accuracy`` (fraction of
    correct argmax predictions). The DTN rebuilds f and C_T from its checkpoints' run config.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(network, optimizer, scheduler)
        self.val_accuracy = MeanMetric()
        self.test_accuracy = MeanMetric()

    def forward(self, images: Tensor) -> Tensor:
        return self.network(images)

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
