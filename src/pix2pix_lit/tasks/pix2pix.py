"""pix2pix (Isola et al. 2017): a generator G: x → y and a conditional discriminator D."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.losses import Pix2PixObjective
from pix2pix_lit.tasks.base import OptimizerFactory, SchedulerFactory, TranslationTask


class Pix2Pix(TranslationTask):
    """Paired translation: per batch one D step, then one G step (the reference order).

    ``generator`` and ``discriminator`` are plain modules from the ``model`` and
    ``discriminator`` config groups, so any pair can be combined; ``objective`` holds
    everything pix2pix-specific about the losses (GAN mode, λs, conditioning, pool).
    ``clip_grad_norm`` > 0 clips each network's gradients (Lightning's
    ``gradient_clip_val`` does not apply under manual optimization).
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
    ):
        super().__init__(
            optimizer_g, optimizer_d, scheduler, inference, validation_seed, nonfinite_patience
        )
        self.generator = generator
        self.discriminator = discriminator
        self.objective = objective
        self.clip_grad_norm = clip_grad_norm
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

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        real_a, real_b = batch["A"], batch["B"]
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
