"""The pix2pix objective: conditional GAN + λ·L1 (Isola et al. 2017, eq. 4), with its variants."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.losses.cam import (
    CAMLogits,
    check_cam_generators,
    domain_classification_loss,
    run_with_cam,
)
from pix2pix_lit.losses.gan import GANLoss, features, gradient_penalty
from pix2pix_lit.losses.pool import ImagePool

Logs = dict[str, Tensor]


class Pix2PixObjective(nn.Module):
    """G* = arg min_G max_D λ_GAN·L_cGAN(G, D) + λ_L1·L_L1(G) [+ λ_FM·L_FM] [+ λ_CAM·L_CAM].

    Notation: x = ``real_A`` (input), y = ``real_B`` (target), G(x) = ``fake_B``.

    * ``conditional=True``: D sees (x, y) concatenated on channels (the cGAN rows of the
      paper); ``False``: D sees y alone (the unconditional "GAN" rows).
    * The discriminator's objective is halved (the paper: "we divide the objective by 2
      while optimizing D, which slows down the rate at which D learns relative to G").
    * ``lambda_gan=0`` is the paper's "L1 only" row (D is then not trained at all);
      ``lambda_l1=0`` the "cGAN only" row.
    * ``lambda_fm`` > 0 adds pix2pixHD's feature-matching loss (needs a discriminator that
      returns features, e.g. ``MultiscaleDiscriminator``).
    * ``gan_mode=wgangp`` adds the gradient penalty ``lambda_gp`` to the D loss.
    * ``lambda_cam`` > 0 (U-GAT-IT generators only) trains the generator's auxiliary
      classifier to tell encoder features of inputs x (label 1) from targets y (label 0),
      as U-GAT-IT does with source and target domains (:mod:`pix2pix_lit.losses.cam`).
    """

    def __init__(
        self,
        gan_mode: str = "vanilla",
        lambda_gan: float = 1.0,
        lambda_l1: float = 100.0,
        lambda_fm: float = 0.0,
        lambda_gp: float = 10.0,
        lambda_cam: float = 0.0,
        conditional: bool = True,
        real_label: float = 1.0,
        pool_size: int = 0,
    ):
        super().__init__()
        for key, value in (
            ("lambda_gan", lambda_gan),
            ("lambda_l1", lambda_l1),
            ("lambda_fm", lambda_fm),
            ("lambda_gp", lambda_gp),
            ("lambda_cam", lambda_cam),
        ):
            if value < 0:
                raise ConfigError(f"loss.{key}={value} must be >= 0")
        if not 0.0 < real_label <= 1.0:
            raise ConfigError(f"loss.real_label={real_label} must be in (0, 1]")
        self.gan = GANLoss(gan_mode, real_label=real_label)
        self.lambda_gan = lambda_gan
        self.lambda_l1 = lambda_l1
        self.lambda_fm = lambda_fm
        self.lambda_gp = lambda_gp
        self.lambda_cam = lambda_cam
        self.conditional = conditional
        self.pool = ImagePool(pool_size)

    @property
    def trains_discriminator(self) -> bool:
        """Whether D takes part at all (not for the "L1 only" row)."""
        return self.lambda_gan > 0 or self.lambda_fm > 0

    def check_generators(self, *generators: nn.Module) -> None:
        """Raise :class:`ConfigError` unless the generators provide what the objective uses."""
        if self.lambda_cam > 0:
            check_cam_generators(f"loss.lambda_cam={self.lambda_cam}", *generators)

    def run_generator(
        self, generator: nn.Module, real_a: Tensor, real_b: Tensor
    ) -> tuple[Tensor, CAMLogits | None]:
        """G(x), and the generator's CAM logits (η(x), η(y)) when λ_CAM > 0 (else None)."""
        if self.lambda_cam == 0:
            return generator(real_a), None
        fake_b, input_logit = run_with_cam(generator, real_a)
        _, target_logit = run_with_cam(generator, real_b)
        return fake_b, (input_logit, target_logit)

    def discriminator_input(self, real_a: Tensor, b: Tensor) -> Tensor:
        """What D sees: (x, y) on channels when conditional, else y alone."""
        return torch.cat([real_a, b], dim=1) if self.conditional else b

    def discriminator_loss(
        self, discriminator: nn.Module, real_a: Tensor, real_b: Tensor, fake_b: Tensor
    ) -> tuple[Tensor, Logs]:
        """L_D = ½·[ℓ(D(x, y), real) + ℓ(D(x, G(x)), fake)] (+ gradient penalty)."""
        fake_in = self.pool.query(self.discriminator_input(real_a, fake_b.detach()))
        real_in = self.discriminator_input(real_a, real_b)
        loss_fake = self.gan(discriminator(fake_in), target_is_real=False)
        loss_real = self.gan(discriminator(real_in), target_is_real=True)
        loss = 0.5 * (loss_real + loss_fake)
        logs = {"D_real": loss_real.detach(), "D_fake": loss_fake.detach()}
        if self.gan.gan_mode == "wgangp":
            penalty = gradient_penalty(discriminator, real_in, fake_in, self.lambda_gp)
            loss = loss + penalty
            logs["D_GP"] = penalty.detach()
        return loss, logs

    def generator_loss(
        self,
        discriminator: nn.Module,
        real_a: Tensor,
        real_b: Tensor,
        fake_b: Tensor,
        cam: CAMLogits | None = None,
    ) -> tuple[Tensor, Logs]:
        """L_G = λ_GAN·ℓ(D(x, G(x)), real) + λ_L1·‖y − G(x)‖₁ (+ λ_FM·L_FM) (+ the CAM loss
        :meth:`cam_loss` of ``cam``, the logits of :meth:`run_generator`)."""
        l1 = F.l1_loss(fake_b.float(), real_b.float())
        loss = self.lambda_l1 * l1
        logs: Logs = {"G_L1": l1.detach()}
        if self.trains_discriminator:
            fake_out = discriminator(self.discriminator_input(real_a, fake_b))
            g_gan = self.gan(fake_out, target_is_real=True, for_discriminator=False)
            loss = loss + self.lambda_gan * g_gan
            logs["G_GAN"] = g_gan.detach()
            if self.lambda_fm > 0:
                with torch.no_grad():
                    real_out = discriminator(self.discriminator_input(real_a, real_b))
                fm = feature_matching_loss(features(fake_out), features(real_out))
                loss = loss + self.lambda_fm * fm
                logs["G_FM"] = fm.detach()
        if cam is not None:
            loss_cam, cam_logs = self.cam_loss(*cam)
            loss = loss + loss_cam
            logs.update(cam_logs)
        return loss, logs

    def cam_loss(self, input_logit: Tensor, target_logit: Tensor) -> tuple[Tensor, Logs]:
        """λ_CAM·[BCE(η(x), 1) + BCE(η(y), 0)] on the generator's CAM logits of x and y."""
        cam = domain_classification_loss(input_logit, target_logit)
        return self.lambda_cam * cam, {"G_CAM": cam.detach()}


def feature_matching_loss(fake: list[list[Tensor]], real: list[list[Tensor]]) -> Tensor:
    """pix2pixHD's L_FM: mean over scales and layers of ‖D_k^(i)(x, G(x)) − D_k^(i)(x, y)‖₁."""
    if not fake or not any(fake):
        raise ConfigError(
            "loss.lambda_fm > 0 needs a discriminator that returns features "
            "(discriminator=multiscale); set loss.lambda_fm=0 for this discriminator"
        )
    terms = [
        F.l1_loss(f.float(), r.float())
        for fs, rs in zip(fake, real, strict=True)
        for f, r in zip(fs, rs, strict=True)
    ]
    return torch.stack(terms).mean()
