"""The segmenter of the FCN-score: photo → class map, trained on real photos.

pix2pix measures labels → photo with an FCN trained to segment real photos (Isola et al. 2017,
Sec. 4.2); this task trains one on the same paired data (``direction=AtoB``: photo in, colour
label map out). The colour label maps become class indices through the nearest colour of the
palette (:func:`~pix2pix_lit.metrics.class_indices`); the loss is per-pixel cross-entropy
(Long et al. 2015, Sec. 3). Validation and test report ``pixel_accuracy``, ``class_accuracy``
and ``mean_IoU`` over the split's summed confusion, the scores the FCN-score reuses
(:mod:`pix2pix_lit.metrics.fcn_score`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pix2pix_lit.metrics.fcn_score import fcn_confusion, segment
from pix2pix_lit.metrics.labels import (
    Palette,
    class_indices,
    label_scores,
    paint,
)
from pix2pix_lit.tasks.optimizers import OptimizerFactory, SchedulerFactory
from pix2pix_lit.tasks.supervised import SupervisedTask


def segmentation_loss(logits: Tensor, classes: Tensor) -> Tensor:
    """Mean per-pixel cross-entropy of (N, K, H, W) logits against (N, H, W) class indices."""
    return F.cross_entropy(logits.float(), classes)


class Segmenter(SupervisedTask):
    """Per-pixel classifier ``network`` trained with cross-entropy on palette class indices.

    Batches are the paired data's ``{"A": photos, "B": colour label maps}``. Evaluation runs
    the network in eval mode (:func:`~pix2pix_lit.metrics.fcn_score.segment`).
    """

    def __init__(
        self,
        network: nn.Module,
        palette: Mapping[str, Any],
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(network, optimizer, scheduler)
        self.palette = Palette.from_config(palette)
        k = self.palette.num_classes
        self._confusion = torch.zeros(k, k, dtype=torch.long)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = segmentation_loss(self.network(batch["A"]), self._targets(batch))
        self.log("train/CE", loss, on_step=True, on_epoch=True, batch_size=len(batch["A"]))
        return loss

    def _targets(self, batch: dict[str, Any]) -> Tensor:
        return class_indices(batch["B"].cpu(), self.palette).to(self.device)

    def _accumulate(self, batch: dict[str, Any]) -> None:
        # the FCN-score's own confusion, so its score of real photos is this test score
        self._confusion += fcn_confusion(self.network, batch["A"], batch["B"], self.palette)

    def _report(self, prefix: str) -> None:
        # summed over the processes of a data-parallel run (one process: unchanged)
        confusion = self.trainer.strategy.reduce(self._confusion.to(self.device), reduce_op="sum")
        scores = label_scores(confusion.cpu())
        self.log_dict({f"{prefix}/{k}": v for k, v in scores.items()})
        self._confusion.zero_()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._accumulate(batch)

    def on_validation_epoch_end(self) -> None:
        self._report("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._accumulate(batch)

    def on_test_epoch_end(self) -> None:
        self._report("test")

    def grid_columns(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Columns of the validation image grid: photo | predicted labels | target labels."""
        predicted = paint(segment(self.network, batch["A"]), self.palette)
        return {"input": batch["A"], "output": predicted, "target": batch["B"]}
