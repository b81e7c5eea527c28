"""pix2pix (Isola et al. 2017): a generator G: x → y and a conditional discriminator D."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.losses import Pix2PixObjective
from pix2pix_lit.tasks.base import OptimizerFactory, SchedulerFactory, TranslationTask
from pix2pix_lit.tasks.graphed_step import GraphedStep


def update_step(
    generator: nn.Module,
    discriminator: nn.Module,
    objective: Pix2PixObjective,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    real_a: Tensor,
    real_b: Tensor,
) -> dict[str, Tensor]:
    """One pix2pix update on plain optimizers: D on (x, y) and (x, G(x)), then G with D
    frozen (the reference order); returns the losses. No host sync, no Lightning hooks: the
    step the bench's plain loop times and :class:`GraphedStep` captures."""
    opt_g, opt_d = optimizers
    fake_b = generator(real_a)
    logs: dict[str, Tensor] = {}
    if objective.trains_discriminator:
        loss_d, d_logs = objective.discriminator_loss(discriminator, real_a, real_b, fake_b)
        _descend(opt_d, loss_d)
        logs.update(d_logs)
    # As toggle_optimizer does: the G step computes no gradients for D's weights.
    discriminator.requires_grad_(False)
    loss_g, g_logs = objective.generator_loss(discriminator, real_a, real_b, fake_b)
    _descend(opt_g, loss_g)
    discriminator.requires_grad_(True)
    logs.update(g_logs)
    return logs


def _descend(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class Pix2Pix(TranslationTask):
    """Paired translation: per batch one D step, then one G step (the reference order).

    ``generator`` and ``discriminator`` are plain modules from the ``model`` and
    ``discriminator`` config groups, so any pair can be combined; ``objective`` holds
    everything pix2pix-specific about the losses (GAN mode, λs, conditioning, pool).
    ``clip_grad_norm`` > 0 clips each network's gradients (Lightning's
    ``gradient_clip_val`` does not apply under manual optimization). ``cuda_graph``: capture
    the whole step once as a CUDA graph and replay it for every batch of the same shape
    (:mod:`pix2pix_lit.tasks.graphed_step`); where it cannot be captured the eager step runs, after
    a one-line warning.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        objective: Pix2PixObjective,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        inference: str = "paper",
        validation_seed: int = 0,
        nonfinite_patience: int = 10,
        clip_grad_norm: float = 0.0,
        cuda_graph: bool = False,
    ):
        super().__init__(
            optimizer_g, optimizer_d, scheduler, inference, validation_seed, nonfinite_patience
        )
        self.generator = generator
        self.discriminator = discriminator
        self.objective = objective
        self.clip_grad_norm = clip_grad_norm
        self.cuda_graph = cuda_graph
        self._graphed: GraphedStep | None = None
        if objective.lambda_cam > 0 and not hasattr(generator, "forward_with_cam"):
            raise ConfigError(
                f"loss.lambda_cam={objective.lambda_cam} needs a generator with a CAM classifier "
                f"(model=ugatit or ugatit_light), not {type(generator).__name__}"
            )

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return self.generator.parameters()

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        return self.discriminator.parameters()

    def translate(self, images: Tensor) -> Tensor:
        return self.generator(images)

    def translation_network(self) -> nn.Module:
        return self.generator

    def graph_obstacle(self) -> str | None:
        """What in this run's configuration keeps the step out of a CUDA graph, if anything."""
        if self.nonfinite_patience > 0:
            return (
                f"task.nonfinite_patience={self.nonfinite_patience} checks each loss on the host"
                " (a sync); set task.nonfinite_patience=0"
            )
        if self.clip_grad_norm > 0:
            return "task.clip_grad_norm > 0 clips in Lightning's optimizer hook; set it to 0"
        if self.objective.pool.pool_size > 0:
            return "loss.pool_size > 0 draws from the image pool on the host; set it to 0"
        if self.objective.lambda_cam > 0:
            return "loss.lambda_cam > 0 (U-GAT-IT's CAM loss) is not in the captured step"
        if self.trainer.world_size > 1:
            return "data-parallel training (trainer.devices > 1) is not captured"
        if "16" in str(self.trainer.precision) and "bf16" not in str(self.trainer.precision):
            return "trainer.precision=16-mixed scales losses in Lightning's step; use bf16-mixed"
        return None

    def _graphed_step(self) -> GraphedStep | None:
        """The step's CUDA graph (built on first use); None when it is off or disabled."""
        if not self.cuda_graph:
            return None
        if self._graphed is None:
            optimizers = tuple(opt.optimizer for opt in self.optimizers())
            networks = (self.generator, self.discriminator)
            step = partial(update_step, *networks, self.objective, optimizers)
            self._graphed = GraphedStep(step, (*networks, self.objective), optimizers)
            obstacle = self.graph_obstacle()
            if obstacle is not None:
                self._graphed.disable(obstacle)
        return None if self._graphed.disabled else self._graphed

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real_a, real_b = batch["A"], batch["B"]
        graphed = self._graphed_step()
        if graphed is not None and graphed.fits(real_a, real_b):
            logs = graphed(real_a, real_b)
            # LightningOptimizer.step counts each optimizer step (trainer.global_step) in
            # these hooks; the graph steps the optimizers underneath it.
            opt_g, opt_d = self.optimizers()
            for opt in (opt_d, opt_g) if self.objective.trains_discriminator else (opt_g,):
                opt._on_before_step()
                opt._on_after_step()
            self.log_losses(logs, batch_size=real_a.shape[0])
            return
        opt_g, opt_d = self.optimizers()
        networks = (self.generator, self.discriminator)
        buffers = self.snapshot_buffers(*networks)
        skipped = False
        cam = self.objective.lambda_cam > 0
        if cam:
            fake_b, input_cam, _ = self.generator.forward_with_cam(real_a)
        else:
            fake_b = self.generator(real_a)
        logs: dict[str, Tensor] = {}

        if self.objective.trains_discriminator:
            self.toggle_optimizer(opt_d)
            loss_d, d_logs = self.objective.discriminator_loss(
                self.discriminator, real_a, real_b, fake_b
            )
            if self.loss_is_finite(loss_d, "D"):
                opt_d.zero_grad(set_to_none=True)
                self.manual_backward(loss_d)
                opt_d.step()
            else:
                skipped = True
            self.untoggle_optimizer(opt_d)
            logs.update(d_logs)

        self.toggle_optimizer(opt_g)
        loss_g, g_logs = self.objective.generator_loss(self.discriminator, real_a, real_b, fake_b)
        if cam:
            _, target_cam, _ = self.generator.forward_with_cam(real_b)
            loss_cam, cam_logs = self.objective.cam_loss(input_cam, target_cam)
            loss_g = loss_g + loss_cam
            g_logs.update(cam_logs)
        if self.loss_is_finite(loss_g, "G"):
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g)
            opt_g.step()
            if hasattr(self.generator, "clip_rho"):
                self.generator.clip_rho()  # U-GAT-IT keeps AdaLIN/LIN's rho in [0, 1]
        else:
            skipped = True
        self.untoggle_optimizer(opt_g)
        logs.update(g_logs)
        self.finish_batch(skipped, buffers, networks, logs, batch_size=real_a.shape[0])

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Called inside opt.step(), after a 16-mixed GradScaler has unscaled the gradients,
        # so the threshold means the same in every precision (cf. Lightning #18089).
        if self.clip_grad_norm > 0:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.clip_grad_norm, gradient_clip_algorithm="norm"
            )
