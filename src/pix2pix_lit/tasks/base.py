"""The LightningModule every translation task (paired and unpaired) is: two optimizers stepped
by hand, validation metrics, the test-time protocol and what checkpoints carry.

A task subclasses :class:`TranslationTask`, builds its networks and losses, and writes
``training_step`` from :meth:`~TranslationTask.update` calls. The machinery it is assembled
from lives beside it: :mod:`~pix2pix_lit.tasks.update` (the update and the non-finite guard),
:mod:`~pix2pix_lit.tasks.optimizers` (optimizers and schedules),
:mod:`~pix2pix_lit.tasks.loss_logging` (the training losses) and
:mod:`~pix2pix_lit.tasks.rng_states` (random generators in checkpoints and around validation).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import MeanMetric
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from pix2pix_lit.checkpoint_file import CONFIG_KEY
from pix2pix_lit.inference import check_inference_mode, inference_protocol
from pix2pix_lit.tasks import optimizers
from pix2pix_lit.tasks.loss_logging import LossLog
from pix2pix_lit.tasks.optimizers import OptimizerFactory, SchedulerFactory
from pix2pix_lit.tasks.rng_states import SeededEvaluation, collect_rng_states, restore_rng_states
from pix2pix_lit.tasks.update import (
    BufferSnapshot,
    LossFn,
    NonFiniteGuard,
    Update,
    guarded_update,
    merged_logs,
)

log = logging.getLogger(__name__)


class TranslationTask(L.LightningModule):
    """Two optimizers (generator side, discriminator side) stepped by hand each batch.

    Subclasses provide :meth:`generator_parameters`, :meth:`discriminator_parameters`,
    :meth:`translate` (input → output image, used for validation, grids and export) and
    ``training_step``. Validation reports, on images mapped to [0, 1]: ``val/L1`` (mean
    absolute error in [-1, 1], the training L1), ``val/PSNR`` and ``val/SSIM``.

    ``nonfinite_patience``: skip an update whose loss is not finite, stop after this many in
    a row (0: no check; :class:`~pix2pix_lit.tasks.update.NonFiniteGuard`).
    ``clip_grad_norm`` > 0 clips each network's gradients to that norm (Lightning's
    ``gradient_clip_val`` does not apply under manual optimization).
    """

    #: how ``evaluate`` scores the task: on image pairs (L1, PSNR, SSIM, images, gallery), or
    #: False: by the metrics of its own ``test_step`` (the DTN's classifier accuracies)
    scores_image_pairs = True

    def __init__(
        self,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        inference: str = "paper",
        validation_seed: int = 0,
        nonfinite_patience: int = 10,
        clip_grad_norm: float = 0.0,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d
        self.scheduler = scheduler
        self.inference = check_inference_mode(inference)
        self.guard = NonFiniteGuard(nonfinite_patience)
        self.clip_grad_norm = clip_grad_norm
        self.loss_log = LossLog()
        self.seeded_evaluation = SeededEvaluation(validation_seed)
        self.run_config: dict[str, Any] | None = None
        # set when loaded for inference (load_task)
        self.checkpoint_epoch: int | None = None
        self.checkpoint_epochs_trained: int | None = None
        # training images of the run a resume started from (None: a fresh start)
        self._resumed_train_size: int | None = None
        self.val_l1 = MeanMetric()
        self.val_psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.val_ssim = StructuralSimilarityIndexMeasure(data_range=1.0)

    # -- what a task defines ---------------------------------------------------------
    def generator_parameters(self) -> Iterable[nn.Parameter]:
        raise NotImplementedError

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        raise NotImplementedError

    def translate(self, images: Tensor) -> Tensor:
        """Map inputs (N, C_in, H, W) in [-1, 1] to outputs (N, C_out, H, W)."""
        return self.translation_network()(images)

    def translation_network(self) -> nn.Module:
        """The network :meth:`translate` runs, put in the test-time mode around it."""
        raise NotImplementedError

    # -- training: updates, losses, schedules ------------------------------------------
    def configure_optimizers(self) -> Any:
        return optimizers.configure_optimizers(self)

    def update(self, name: str, optimizer: Optimizer, loss_fn: LossFn) -> Update:
        """One step of ``optimizer`` (which trains network ``name``) on ``loss_fn()``, the
        other networks frozen meanwhile; skipped when the loss is not finite."""
        return guarded_update(self, self.guard, name, optimizer, loss_fn)

    def finish_batch(
        self, updates: Sequence[Update], snapshot: BufferSnapshot | None, batch_size: int
    ) -> None:
        """End a training step: log its losses, or, when one of its ``updates`` was skipped,
        undo its traces (the buffers of ``snapshot``, which the step took with
        ``self.guard.snapshot`` before its forward passes), leave its losses out of the logs
        (a NaN would make every epoch mean NaN) and stop if training has diverged."""
        if self.guard.settle(updates, snapshot):
            self.log_losses(merged_logs(updates), batch_size)

    def log_losses(self, logs: dict[str, Tensor], batch_size: int) -> None:
        """Count a batch's losses (:class:`~pix2pix_lit.tasks.loss_logging.LossLog`)."""
        self.loss_log.add(self, logs, batch_size)

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Called inside opt.step(), after a 16-mixed GradScaler has unscaled the gradients,
        # so the threshold means the same in every precision (cf. Lightning #18089).
        if self.clip_grad_norm > 0:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.clip_grad_norm, gradient_clip_algorithm="norm"
            )

    def on_train_epoch_end(self) -> None:
        self.loss_log.log_epoch_means(self)
        optimizers.step_schedules(self)

    # -- start of training: split size, resumed settings -----------------------------
    def on_train_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        size = len(dataset) if dataset is not None else None
        if size is not None:
            batches = self.trainer.num_training_batches
            log.info("Training split: %d samples, %s batches an epoch", size, batches)
        if self.trainer.ckpt_path is None:
            return
        optimizers.apply_config_to_restored_states(self)
        saved = self._resumed_train_size
        if saved is not None and size is not None and saved != size:
            log.warning(
                "Resuming on a training split of %d samples, but %s was trained on %d: the "
                "resumed epoch continues by position over other samples, and an epoch now has "
                "another number of steps", size, self.trainer.ckpt_path, saved,
            )  # fmt: skip

    # -- validation and test ---------------------------------------------------------
    def generate(self, images: Tensor) -> Tensor:
        """:meth:`translate` under the configured test-time protocol (``inference``)."""
        with inference_protocol(self.translation_network(), self.inference):
            return self.translate(images)

    def grid_columns(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Named image columns of the sample grid for a batch of fixed validation images."""
        return {"input": batch["A"], "output": self.generate(batch["A"]), "target": batch["B"]}

    def orient_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch with ``A`` the input and ``B`` the target of :meth:`translate` (a task
        that can translate either way swaps them for ``BtoA``)."""
        return batch

    def _evaluate(self, batch: dict[str, Any], prefix: str) -> None:
        batch = self.orient_batch(batch)
        fake = self.generate(batch["A"]).float()
        real = batch["B"].float()
        n = real.shape[0]
        fake01, real01 = (fake.clamp(-1, 1) + 1) / 2, (real + 1) / 2
        # Metrics in fp32 even under bf16/16-mixed: SSIM's convolutions in bf16 are far off.
        with torch.autocast(fake.device.type, enabled=False):
            self.val_l1.update((fake - real).abs().flatten(1).mean(1))
            self.val_psnr.update(fake01, real01)
            self.val_ssim.update(fake01, real01)
        metrics = {"L1": self.val_l1, "PSNR": self.val_psnr, "SSIM": self.val_ssim}
        for name, metric in metrics.items():
            self.log(f"{prefix}/{name}", metric, on_step=False, on_epoch=True, batch_size=n)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # Validation and test draw their own noise and leave the training's random numbers as
    # they were (tasks.rng_states): the test split's scores, too, do not depend on what ran
    # before (test=true after fit).
    def on_validation_start(self) -> None:
        self.seeded_evaluation.start()

    def on_validation_end(self) -> None:
        self.seeded_evaluation.end()

    on_test_start = on_validation_start
    on_test_end = on_validation_end

    def on_validation_epoch_start(self) -> None:
        # Recorded next to the metrics so every run says which protocol produced them.
        self.log("val/inference_paper", float(self.inference == "paper"), on_epoch=True)

    # -- checkpoints -----------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The composed run config, so evaluate/predict/export can rebuild the networks.
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        checkpoint["rng_states"] = collect_rng_states()
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if dataset is not None:
            checkpoint["train_size"] = len(dataset)
        checkpoint["epoch_loss_sums"] = self.loss_log.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The run's own config wins: it is the checkpoint's, with the changes resume.allow let
        # through, and later checkpoints must store what is now trained.
        if self.run_config is None:
            self.run_config = checkpoint.get(CONFIG_KEY)
        self._resumed_train_size = checkpoint.get("train_size")
        if "epoch_loss_sums" in checkpoint:
            self.loss_log.load_state_dict(checkpoint["epoch_loss_sums"], self.device)
        if "rng_states" in checkpoint:
            restore_rng_states(checkpoint["rng_states"])
