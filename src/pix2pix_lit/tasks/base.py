"""Trainer-facing machinery shared by every translation task (paired and unpaired).

A task subclasses :class:`TranslationTask`, builds its networks and losses, and writes
``training_step``; optimizer and scheduler wiring, per-epoch schedules, validation metrics,
the test-time protocol and the run config stored in checkpoints live here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from torchmetrics import MeanMetric
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from pix2pix_lit.checkpoint_file import CONFIG_KEY
from pix2pix_lit.errors import ConfigError, TrainingDivergedError
from pix2pix_lit.inference import check_inference_mode, inference_protocol

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
SchedulerFactory = Callable[[Optimizer], LRScheduler]


class TranslationTask(L.LightningModule):
    """Two optimizers (generator side, discriminator side) stepped by hand each batch.

    Subclasses provide :meth:`generator_parameters`, :meth:`discriminator_parameters`,
    :meth:`translate` (input → output image, used for validation, grids and export) and
    ``training_step``. Validation reports, on images mapped to [0, 1]: ``val/L1`` (mean
    absolute error in [-1, 1], the training L1), ``val/PSNR`` and ``val/SSIM``.
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
    ):
        super().__init__()
        self.automatic_optimization = False
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d
        self.scheduler = scheduler
        self.inference = check_inference_mode(inference)
        self.validation_seed = validation_seed
        if nonfinite_patience < 0:
            raise ConfigError(f"task.nonfinite_patience={nonfinite_patience} must be >= 0")
        self.nonfinite_patience = nonfinite_patience
        self.skipped_steps = 0
        self._buffer_snapshot: list[Tensor] = []
        # running sums of the training losses of epoch _loss_epoch (tensors on the device) and
        # the number of samples in them, for the epoch means (see log_losses)
        self._loss_epoch = -1
        self._loss_sums: dict[str, Tensor] = {}
        self._loss_samples = 0
        self._consecutive_nonfinite: dict[str, int] = {}
        self._skipped = False  # an update of this batch was skipped (non-finite loss)
        self.run_config: dict[str, Any] | None = None
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
        raise NotImplementedError

    def translation_network(self) -> nn.Module:
        """The network :meth:`translate` runs, put in the test-time mode around it."""
        raise NotImplementedError

    # -- optimizers and schedules ----------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizers = [
            self.optimizer_g(self.generator_parameters()),
            self.optimizer_d(self.discriminator_parameters()),
        ]
        if self.scheduler is None:
            return optimizers
        return optimizers, [self.scheduler(opt) for opt in optimizers]

    def on_train_epoch_end(self) -> None:
        if self._loss_epoch == self.current_epoch and self._loss_samples:
            means = {f"train/{k}_epoch": v / self._loss_samples for k, v in self._loss_sums.items()}
            self.log_dict(means, on_step=False, on_epoch=True, sync_dist=True)
        # Manual optimization leaves scheduling to us; the paper's schedule is per epoch.
        # The rates are logged here rather than by LearningRateMonitor, which refuses to
        # run without a logger (logger=none).
        optimizers = self.optimizers()
        for name, opt in zip(("G", "D"), optimizers, strict=True):
            self.log(f"train/lr_{name}", opt.param_groups[0]["lr"], on_epoch=True)
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()

    def loss_is_finite(self, loss: Tensor, name: str) -> bool:
        """Whether to step on ``loss``; a non-finite one is to be skipped, and is counted.

        Costs one device-to-host sync; ``nonfinite_patience=0`` turns the check off. Under
        data-parallel training every process skips when any one has a non-finite loss: a
        process that stepped alone would wait forever for the others' gradients. A step
        that skipped an update ends with :meth:`finish_batch`.
        """
        if self.nonfinite_patience == 0:
            return True
        finite_here = bool(torch.isfinite(loss).all())
        if self.trainer.strategy.reduce_boolean_decision(finite_here, all=True):
            self._consecutive_nonfinite[name] = 0
            return True
        count = self._consecutive_nonfinite.get(name, 0) + 1
        self._consecutive_nonfinite[name] = count
        self.skipped_steps += 1
        self.log("train/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)
        log.warning(
            "Non-finite %s loss (%s in process %d) at epoch %d, step %d: step skipped (%d in a row)",
            name, float(loss.detach()), self.global_rank, self.current_epoch, self.global_step,
            count,
        )  # fmt: skip
        return False

    def update_network(
        self,
        name: str,
        optimizer: Optimizer,
        loss_fn: Callable[[], tuple[Tensor, dict[str, Tensor]]],
    ) -> dict[str, Tensor]:
        """One step of ``optimizer`` on ``loss_fn()``, the other networks frozen meanwhile;
        skipped when the loss is not finite (recorded in ``_skipped``, which a training step
        resets when it starts and hands to :meth:`finish_batch`). Returns the loss's logs."""
        self.toggle_optimizer(optimizer)
        loss, logs = loss_fn()
        if self.loss_is_finite(loss, name):
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
        else:
            self._skipped = True
        self.untoggle_optimizer(optimizer)
        return logs

    def stop_if_diverged(self) -> None:
        """Raise :class:`TrainingDivergedError` after ``nonfinite_patience`` consecutive
        non-finite losses of the same network."""
        for name, count in self._consecutive_nonfinite.items():
            if self.nonfinite_patience and count >= self.nonfinite_patience:
                raise TrainingDivergedError(
                    f"the {name} loss was non-finite in {count} consecutive steps "
                    f"(task.nonfinite_patience={self.nonfinite_patience}); training stopped "
                    "with the weights from before the fault in checkpoints/before_nonfinite.ckpt."
                    " Try a lower optim.lr, task.clip_grad_norm > 0, or trainer.precision=32"
                )

    def snapshot_buffers(self, *modules: nn.Module) -> list[Tensor] | None:
        """Copies of the buffers of ``modules``: batch-norm statistics and their counters.

        A batch whose loss turns out non-finite has already pushed its NaNs into the
        running statistics during the forward pass; skipping the optimizer step alone
        would leave them there. None when the non-finite check is off.
        """
        if self.nonfinite_patience == 0:
            return None
        buffers = _buffers(modules)
        saved = self._buffer_snapshot
        if [(b.shape, b.device) for b in saved] != [(b.shape, b.device) for b in buffers]:
            saved = self._buffer_snapshot = [b.detach().clone() for b in buffers]
        elif buffers:
            # into the same storage every step, in one call: a clone per buffer would cost a
            # kernel launch and an allocation each (30+ per pix2pix step)
            torch._foreach_copy_(saved, buffers)
        return saved

    @staticmethod
    def restore_buffers(snapshot: list[Tensor], *modules: nn.Module) -> None:
        buffers = _buffers(modules)
        if buffers:  # instance-norm networks have none
            with torch.no_grad():
                torch._foreach_copy_(buffers, snapshot)

    def finish_batch(
        self,
        skipped: bool,
        buffers: list[Tensor] | None,
        networks: tuple[nn.Module, ...],
        logs: dict[str, Tensor],
        batch_size: int,
    ) -> None:
        """End a training step: log the batch's losses, or, when one of its updates was
        skipped, undo its traces (batch-norm statistics from ``buffers``), leave its losses
        out of the logs (a NaN would make every epoch mean NaN) and stop if training has
        diverged."""
        if not skipped:
            self.log_losses(logs, batch_size)
            return
        if buffers is not None:
            self.restore_buffers(buffers, *networks)
        self.stop_if_diverged()

    def log_losses(self, logs: dict[str, Tensor], batch_size: int) -> None:
        """Training losses as ``train/<name>_step`` (this process's, every
        ``log_every_n_steps``) and ``train/<name>_epoch`` (the epoch mean over all processes,
        logged when the epoch ends).

        Lightning's ``self.log`` costs host time per value and call: the four losses logged
        every step for step and epoch took 1.2 ms a step on this project's 2-core CPU
        (experiments/throughput/README.md), a quarter of the step of the GPU target. So the
        step values go to ``self.log`` only on the steps the loggers write, and the epoch
        means are running sums on the device, reduced across processes once per epoch
        (0.08 ms a step). No host sync.
        """
        if self._loss_epoch != self.current_epoch:
            self._loss_epoch, self._loss_sums, self._loss_samples = self.current_epoch, {}, 0
        for name, value in logs.items():
            weighted = value.detach().float() * batch_size
            self._loss_sums[name] = self._loss_sums.get(name, 0) + weighted
        self._loss_samples += batch_size
        if self._loggers_write_this_step():
            self.log_dict(
                {f"train/{k}_step": v.detach() for k, v in logs.items()},
                on_step=True,
                on_epoch=False,
            )

    def _loggers_write_this_step(self) -> bool:
        # Lightning's own test for writing the step's metrics to the loggers (its logger
        # connector is private; the test is the one its training loop applies after this step)
        trainer = self.trainer
        return bool(trainer.fast_dev_run) or trainer._logger_connector.should_update_logs

    # -- start of training: split size, resumed settings -----------------------------
    def on_train_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        size = len(dataset) if dataset is not None else None
        if size is not None:
            batches = self.trainer.num_training_batches
            log.info("Training split: %d samples, %s batches an epoch", size, batches)
        if self.trainer.ckpt_path is None:
            return
        apply_config_to_restored_states(self)
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

    def on_validation_start(self) -> None:
        # Validation draws its own noise (dropout in the paper's protocol) from a fixed seed
        # and hands the global generators back untouched afterwards: metrics of different
        # epochs see the same noise, and training draws the same numbers whether or not,
        # and however often, it was validated (so resumed runs match uninterrupted ones).
        self._training_rng_states = collect_rng_states()
        torch.manual_seed(self.validation_seed)

    def on_validation_end(self) -> None:
        restore_rng_states(self._training_rng_states)

    # the test split's scores, too, do not depend on what ran before (test=true after fit)
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
        # Lightning does not store the random generators; without them a resumed run draws
        # other dropout masks, crops and shuffles than the uninterrupted run would have.
        checkpoint["rng_states"] = collect_rng_states()
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if dataset is not None:
            checkpoint["train_size"] = len(dataset)
        # a run resumed mid-epoch still reports the mean over the whole epoch
        checkpoint["epoch_loss_sums"] = {
            "epoch": self._loss_epoch,
            "sums": {k: v.detach().cpu() for k, v in self._loss_sums.items()},
            "samples": self._loss_samples,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The run's own config wins: it is the checkpoint's, with the changes resume.allow let
        # through, and later checkpoints must store what is now trained.
        if self.run_config is None:
            self.run_config = checkpoint.get(CONFIG_KEY)
        self._resumed_train_size = checkpoint.get("train_size")
        if "epoch_loss_sums" in checkpoint:
            saved = checkpoint["epoch_loss_sums"]
            self._loss_epoch, self._loss_samples = saved["epoch"], saved["samples"]
            self._loss_sums = {k: v.to(self.device) for k, v in saved["sums"].items()}
        if "rng_states" in checkpoint:
            restore_rng_states(checkpoint["rng_states"])


def apply_config_to_restored_states(task: L.LightningModule) -> None:
    """Put the run's optimizer and scheduler settings into the states a resume restored.

    Lightning restores each optimizer's parameter groups (learning rate, betas, weight
    decay…) and each scheduler (base rates, schedule) as they were saved, so a setting
    changed on resume (``resume.allow=[optim.lr]``) would be silently ignored. Here the
    settings come from optimizers and schedulers built afresh from the config by
    ``task.configure_optimizers()`` (every task's returns a list of optimizers, or that list
    and one of schedulers); the learning rate is the new schedule's at the restored epoch.
    Without changes this reproduces the restored values exactly. Every task calls it when a
    resumed training starts (``on_train_start``).
    """
    configured = task.configure_optimizers()
    fresh, fresh_schedulers = configured if isinstance(configured, tuple) else (configured, [])
    for restored, new in zip(task.trainer.optimizers, fresh, strict=True):
        for group, new_group in zip(restored.param_groups, new.param_groups, strict=True):
            group.update({k: v for k, v in new_group.items() if k != "params"})
    configs = task.trainer.lr_scheduler_configs
    for config, new_scheduler in zip(configs, fresh_schedulers, strict=True):
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


def check_input_size(task: nn.Module, size: int, key: str = "data.crop_size") -> None:
    """Raise :class:`ConfigError` naming ``key`` unless every network of ``task`` takes a
    ``size`` × ``size`` input (U-GAT-IT's 7-layer discriminator needs 128 px, U-Net256
    multiples of 256…), before training rather than at its first step.

    Runs each network on the ``meta`` device: shapes only, no computation, no copy.
    """
    for name, network in task.named_children():
        if not any(isinstance(m, nn.Conv2d) for m in network.modules()):
            continue  # metrics, losses
        channels = conv_channels(network)[0]
        error = _shape_error(network, channels, size)
        if error is None:
            continue
        if isinstance(error, ConfigError):
            raise error
        fits = next((s for s in (2**k for k in range(3, 13)) if s > size and
                     _shape_error(network, channels, s) is None), None)  # fmt: skip
        if fits is None:
            # no size works: not a size problem (an operation without a meta version);
            # training will show the real error
            continue
        raise ConfigError(
            f"{key}={size} is too small for the {name} ({type(network).__name__}): "
            f"{str(error).splitlines()[0]}; the smallest power of two it takes is {fits}"
        )


def conv_channels(net: nn.Module) -> tuple[int, int]:
    """(input channels of the first convolution, output channels of the last) of ``net``.

    Every network of the zoo registers its layers in the order they run, so these are the
    channels the network takes and returns.
    """
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    return convs[0].in_channels, convs[-1].out_channels


def _shape_error(network: nn.Module, channels: int, size: int) -> Exception | None:
    """The error ``network`` raises on a (1, channels, size, size) input, on the meta device."""
    tensors = {name: torch.empty_like(t, device="meta")
               for name, t in (*network.named_parameters(), *network.named_buffers())}  # fmt: skip
    try:
        functional_call(network, tensors, (torch.empty(1, channels, size, size, device="meta"),))
    except NotImplementedError:
        return None  # an operation without a meta version: nothing to say about the size
    except (RuntimeError, ValueError) as err:
        return err
    return None


def _buffers(modules: Iterable[nn.Module]) -> list[Tensor]:
    return [b for m in modules for b in m.buffers()]


def collect_rng_states() -> dict[str, Any]:
    """The states of python's, numpy's and torch's (CPU and CUDA) global generators.

    Plain python types and tensors only, so checkpoints still load with
    ``torch.load(weights_only=True)``.
    """
    kind, key, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(key.copy()), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    kind, key, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, key.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
