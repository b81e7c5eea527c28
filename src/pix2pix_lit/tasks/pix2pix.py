"""pix2pix (Isola et al. 2017): a generator G: x → y and a conditional discriminator D."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from pix2pix_lit.losses import Pix2PixObjective
from pix2pix_lit.tasks.base import TranslationTask
from pix2pix_lit.tasks.graphed_step import GraphedStep
from pix2pix_lit.tasks.optimizers import OptimizerFactory, SchedulerFactory
from pix2pix_lit.tasks.update import PlainUpdate, Update, UpdateFn, merged_logs


def pix2pix_updates(
    generator: nn.Module,
    discriminator: nn.Module,
    objective: Pix2PixObjective,
    optimizers: Sequence[torch.optim.Optimizer],
    update: UpdateFn,
    real_a: Tensor,
    real_b: Tensor,
) -> list[Update]:
    """One iteration of pix2pix's training (Isola et al. 2017, Sec. 3.3, the reference order):
    G(x) once; a step of D on the halved cGAN objective, G(x) detached; a step of G on
    cGAN + λ·L1, D frozen by ``update``. D takes no step in the "L1 only" row (λ_GAN = 0).
    ``optimizers`` are (G's, D's)."""
    opt_g, opt_d = optimizers
    fake_b, cam = objective.run_generator(generator, real_a, real_b)
    updates = []
    if objective.trains_discriminator:
        d_loss = partial(objective.discriminator_loss, discriminator, real_a, real_b, fake_b)
        updates.append(update("D", opt_d, d_loss))
    g_loss = partial(objective.generator_loss, discriminator, real_a, real_b, fake_b, cam)
    updates.append(update("G", opt_g, g_loss))
    return updates


def update_step(
    generator: nn.Module,
    discriminator: nn.Module,
    objective: Pix2PixObjective,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    real_a: Tensor,
    real_b: Tensor,
) -> dict[str, Tensor]:
    """:func:`pix2pix_updates` on plain optimizers (:class:`PlainUpdate`); returns the losses.
    No host sync, no Lightning hooks: the step the bench's plain loop times and
    :class:`GraphedStep` captures."""
    update = PlainUpdate((generator, discriminator))
    args = (generator, discriminator, objective, optimizers, update, real_a, real_b)
    return merged_logs(pix2pix_updates(*args))


class Pix2Pix(TranslationTask):
    """Paired translation: per batch one D step, then one G step (the reference order).

    ``generator`` and ``discriminator`` are plain modules from the ``model`` and
    ``discriminator`` config groups, so any pair can be combined; ``objective`` holds
    everything pix2pix-specific about the losses (GAN mode, λs, conditioning, pool).
    ``cuda_graph``: capture the whole step once as a CUDA graph and replay it for every batch
    of the same shape (:mod:`pix2pix_lit.tasks.graphed_step`); where it cannot be captured the
    eager step runs, after a one-line warning.
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
            optimizer_g, optimizer_d, scheduler, inference, validation_seed, nonfinite_patience,
            clip_grad_norm,
        )  # fmt: skip
        objective.check_generators(generator)
        self.generator = generator
        self.discriminator = discriminator
        self.objective = objective
        self.cuda_graph = cuda_graph
        self._graphed: GraphedStep | None = None

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return self.generator.parameters()

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        return self.discriminator.parameters()

    def translation_network(self) -> nn.Module:
        return self.generator

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real_a, real_b = batch["A"], batch["B"]
        if self._replayed_graph(real_a, real_b):
            return
        networks = (self.generator, self.discriminator)
        snapshot = self.guard.snapshot(*networks)
        args = (*networks, self.objective, self.optimizers(), self.update, real_a, real_b)
        self.finish_batch(pix2pix_updates(*args), snapshot, batch_size=len(real_a))

    # -- the whole-step CUDA graph ---------------------------------------------------------
    def graph_obstacle(self) -> str | None:
        """What in this run's configuration keeps the step out of a CUDA graph, if anything."""
        if self.guard.enabled:
            return (
                f"task.nonfinite_patience={self.guard.patience} checks each loss on the host"
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

    def _replayed_graph(self, real_a: Tensor, real_b: Tensor) -> bool:
        """Run the step from its CUDA graph when there is one for this batch's shape."""
        graphed = self._graphed_step()
        if graphed is None or not graphed.fits(real_a, real_b):
            return False
        logs = graphed(real_a, real_b)
        # The graph steps the optimizers underneath Lightning's, whose steps the manual
        # optimization loop counts (trainer.global_step): count the graph's steps there too.
        steps = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        for _ in range(2 if self.objective.trains_discriminator else 1):
            steps.increment_ready()
            steps.increment_completed()
        self.log_losses(logs, batch_size=len(real_a))
        return True
