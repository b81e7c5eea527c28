"""Cycle-consistent objectives of unpaired translation: CycleGAN's and U-GAT-IT's.

Notation (Zhu et al. 2017): G: A → B and F: B → A are the generators, D_A tells real A images
from F(b), D_B real B images from G(a). U-GAT-IT (Kim et al. 2020) writes G_{s→t}, G_{t→s},
D_t, D_s for the same roles.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from pix2pix_lit.losses.gan import DiscriminatorOutput, GANLoss, predictions
from pix2pix_lit.losses.pool import ImagePool

Logs = dict[str, Tensor]


@dataclass
class CycleOutputs:
    """What the generators make of one batch (a, b), with its computation graph.

    ``idt_a`` = F(a) and ``idt_b`` = G(b) are the identity passes (``None`` when unused);
    ``cam_g`` = (η_G(a), η_G(b)) and ``cam_f`` = (η_F(b), η_F(a)) are the CAM logits of the
    generators' auxiliary classifiers on their source and target domains (U-GAT-IT only).
    """

    real_a: Tensor
    real_b: Tensor
    fake_b: Tensor
    fake_a: Tensor
    rec_a: Tensor
    rec_b: Tensor
    idt_a: Tensor | None = None
    idt_b: Tensor | None = None
    cam_g: CAMLogits | None = None
    cam_f: CAMLogits | None = None


def l1(x: Tensor, y: Tensor) -> Tensor:
    """Mean absolute error, in fp32 even under autocast."""
    return F.l1_loss(x.float(), y.float())


class CycleGANObjective(nn.Module):
    """CycleGAN's full objective (Zhu et al. 2017, eq. 3) with the identity loss the paper adds
    for painting → photo:

    L(G, F, D_A, D_B) = λ_GAN·[L_GAN(G, D_B) + L_GAN(F, D_A)] + λ_cyc·L_cyc(G, F)
    + λ_idt·L_identity(G, F), with
    L_cyc = ‖F(G(a)) − a‖₁ + ‖G(F(b)) − b‖₁ and L_identity = ‖F(a) − a‖₁ + ‖G(b) − b‖₁.

    * ``gan_mode``: the adversarial loss (``lsgan``, the paper's choice, ``vanilla`` or
      ``hinge``), summed over a discriminator's prediction maps (one for a PatchGAN).
    * ``lambda_identity`` is the identity loss's absolute weight, as in U-GAT-IT's objective:
      the paper's 0.5·λ_cyc is 5 (the authors' code takes ``--lambda_identity 0.5`` relative
      to ``--lambda_A 10``); 0 skips the identity passes.
    * Each discriminator's objective is halved, ½·[ℓ(D(real), 1) + ℓ(D(fake), 0)], and sees
      fakes drawn from a history of ``pool_size`` earlier ones (Shrivastava et al. 2017).
    * ``conditional`` must stay false: the discriminators judge one domain's images alone
      (the discriminator configs read ``loss.conditional`` to choose their input channels).

    Logged: ``G_GAN_A``/``G_GAN_B`` (F(b) under D_A, G(a) under D_B), ``G_cycle_A``/
    ``G_cycle_B``, ``G_idt_A``/``G_idt_B``, ``D_A_real``, ``D_A_fake``, ``D_B_real``,
    ``D_B_fake`` (the unweighted terms).
    """

    #: weight of each discriminator's real + fake terms (CycleGAN halves them)
    discriminator_factor = 0.5

    def __init__(
        self,
        gan_mode: str = "lsgan",
        lambda_gan: float = 1.0,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 5.0,
        pool_size: int = 50,
        conditional: bool = False,
    ):
        super().__init__()
        if gan_mode == "wgangp":
            raise ConfigError(
                "loss.gan_mode='wgangp' has no gradient penalty in the cycle objectives; "
                "use lsgan, vanilla or hinge"
            )
        for key, value in (
            ("lambda_gan", lambda_gan),
            ("lambda_cycle", lambda_cycle),
            ("lambda_identity", lambda_identity),
        ):
            if value < 0:
                raise ConfigError(f"loss.{key}={value} must be >= 0")
        if conditional:
            raise ConfigError(
                "loss.conditional=true, but unpaired translation has no input to condition "
                "the discriminators on; set loss.conditional=false"
            )
        self.gan = GANLoss(gan_mode)
        self.lambda_gan = lambda_gan
        self.lambda_cycle = lambda_cycle
        self.identity_weight = lambda_identity
        self.pool_a = ImagePool(pool_size)
        self.pool_b = ImagePool(pool_size)

    @property
    def uses_cam(self) -> bool:
        """Whether the generators must provide CAM logits (``forward_with_cam``)."""
        return False

    @property
    def uses_identity(self) -> bool:
        """Whether :meth:`run_generators` runs the identity passes F(a) and G(b)."""
        return self.identity_weight > 0

    def check_generators(self, *generators: nn.Module) -> None:
        """Raise :class:`ConfigError` unless the generators provide what the objective uses."""
        if self.uses_cam:
            check_cam_generators(type(self).__name__, *generators)

    def _run(self, generator: nn.Module, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """A generator's output and, when the objective uses them, its CAM logits."""
        if self.uses_cam:
            return run_with_cam(generator, images)
        return generator(images), None

    def run_generators(
        self, generator: nn.Module, inverse: nn.Module, real_a: Tensor, real_b: Tensor
    ) -> CycleOutputs:
        """Every generator pass the losses need: G(a), F(b), F(G(a)), G(F(b)) [, F(a), G(b)]."""
        fake_b, cam_g_source = self._run(generator, real_a)
        fake_a, cam_f_source = self._run(inverse, real_b)
        outputs = CycleOutputs(
            real_a, real_b, fake_b, fake_a, rec_a=inverse(fake_b), rec_b=generator(fake_a)
        )
        if self.uses_identity:
            outputs.idt_b, cam_g_target = self._run(generator, real_b)
            outputs.idt_a, cam_f_target = self._run(inverse, real_a)
            if self.uses_cam:
                outputs.cam_g = (cam_g_source, cam_g_target)
                outputs.cam_f = (cam_f_source, cam_f_target)
        return outputs

    def adversarial(
        self, output: DiscriminatorOutput, target_is_real: bool, for_discriminator: bool = True
    ) -> Tensor:
        """The GAN loss summed over the discriminator's prediction maps (U-GAT-IT's patch and
        CAM logits at both scales count once each, as in the paper's L_lsgan)."""
        terms = [self.gan(p, target_is_real, for_discriminator) for p in predictions(output)]
        return torch.stack(terms).sum()

    def generator_loss(
        self, discriminator_a: nn.Module, discriminator_b: nn.Module, outputs: CycleOutputs
    ) -> tuple[Tensor, Logs]:
        """λ_GAN·[ℓ(D_B(G(a)), 1) + ℓ(D_A(F(b)), 1)] + λ_cyc·L_cyc (+ identity weight·L_identity)."""
        gan_a = self.adversarial(discriminator_a(outputs.fake_a), True, for_discriminator=False)
        gan_b = self.adversarial(discriminator_b(outputs.fake_b), True, for_discriminator=False)
        cycle_a = l1(outputs.rec_a, outputs.real_a)
        cycle_b = l1(outputs.rec_b, outputs.real_b)
        loss = self.lambda_gan * (gan_a + gan_b) + self.lambda_cycle * (cycle_a + cycle_b)
        logs = {"G_GAN_A": gan_a, "G_GAN_B": gan_b, "G_cycle_A": cycle_a, "G_cycle_B": cycle_b}
        if outputs.idt_a is not None and outputs.idt_b is not None:
            idt_a = l1(outputs.idt_a, outputs.real_a)
            idt_b = l1(outputs.idt_b, outputs.real_b)
            loss = loss + self.identity_weight * (idt_a + idt_b)
            logs.update(G_idt_A=idt_a, G_idt_B=idt_b)
        return loss, {k: v.detach() for k, v in logs.items()}

    def discriminator_loss(
        self, discriminator_a: nn.Module, discriminator_b: nn.Module, outputs: CycleOutputs
    ) -> tuple[Tensor, Logs]:
        """Σ_{X ∈ {A, B}} factor·[ℓ(D_X(x), 1) + ℓ(D_X(pool_X(fake x)), 0)]."""
        loss = torch.zeros((), device=outputs.real_a.device)
        logs: Logs = {}
        for name, discriminator, real, fake, pool in (
            ("A", discriminator_a, outputs.real_a, outputs.fake_a, self.pool_a),
            ("B", discriminator_b, outputs.real_b, outputs.fake_b, self.pool_b),
        ):
            loss_real = self.adversarial(discriminator(real), True)
            loss_fake = self.adversarial(discriminator(pool.query(fake.detach())), False)
            loss = loss + self.discriminator_factor * (loss_real + loss_fake)
            logs[f"D_{name}_real"] = loss_real.detach()
            logs[f"D_{name}_fake"] = loss_fake.detach()
        return loss, logs

    def pool_state(self) -> dict[str, list[Tensor]]:
        """The stored fakes of both pools, for checkpoints."""
        return {"A": list(self.pool_a.images), "B": list(self.pool_b.images)}

    def load_pool_state(self, state: dict[str, list[Tensor]], device: torch.device) -> None:
        """Refill the pools from :meth:`pool_state`, on ``device``."""
        self.pool_a.images = [image.to(device) for image in state["A"]]
        self.pool_b.images = [image.to(device) for image in state["B"]]


class UGATITObjective(CycleGANObjective):
    """U-GAT-IT's full objective (Kim et al. 2020, Sec. 2.2):

    min_{G_{s→t}, G_{t→s}, η_s, η_t} max_{D_s, D_t, η_{D_s}, η_{D_t}}
    λ_1·L_lsgan + λ_2·L_cycle + λ_3·L_identity + λ_4·L_cam, with λ = (1, 10, 10, 1000).

    * L_lsgan covers each discriminator's patch logits and CAM logits (η_{D_t}) at both
      scales (:class:`~pix2pix_lit.networks.GlobalLocalDiscriminator`), each term weighted 1
      with real → 1 and fake → 0, as in the authors' code.
    * ``lambda_identity`` is the paper's λ_3.
    * L_cam trains the generators' classifiers η_s: :func:`domain_classification_loss` of
      G's logits on a (its source, label 1) and on b (the identity pass, label 0), and of F's
      on b and a; the generators must have ``forward_with_cam`` (model=ugatit, ugatit_light).
    * The discriminators' objective is not halved and uses no history pool (the authors' code).

    Logs those of :class:`CycleGANObjective` plus ``G_CAM_G`` and ``G_CAM_F``.
    """

    discriminator_factor = 1.0

    def __init__(
        self,
        gan_mode: str = "lsgan",
        lambda_gan: float = 1.0,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 10.0,
        lambda_cam: float = 1000.0,
        pool_size: int = 0,
        conditional: bool = False,
    ):
        if lambda_cam < 0:
            raise ConfigError(f"loss.lambda_cam={lambda_cam} must be >= 0")
        super().__init__(
            gan_mode, lambda_gan, lambda_cycle, lambda_identity, pool_size, conditional
        )
        self.lambda_cam = lambda_cam

    @property
    def uses_cam(self) -> bool:
        return True

    @property
    def uses_identity(self) -> bool:
        # The CAM loss reads the generators' classifiers on their target domain, which is
        # the identity pass, so it runs whatever λ_3 is.
        return True

    def generator_loss(
        self, discriminator_a: nn.Module, discriminator_b: nn.Module, outputs: CycleOutputs
    ) -> tuple[Tensor, Logs]:
        """CycleGAN's generator terms with U-GAT-IT's weights, + λ_cam·(L_cam^G + L_cam^F)."""
        loss, logs = super().generator_loss(discriminator_a, discriminator_b, outputs)
        if outputs.cam_g is None or outputs.cam_f is None:
            raise ValueError("UGATITObjective needs the CAM logits of run_generators()")
        cam_g = domain_classification_loss(*outputs.cam_g)
        cam_f = domain_classification_loss(*outputs.cam_f)
        logs.update(G_CAM_G=cam_g.detach(), G_CAM_F=cam_f.detach())
        return loss + self.lambda_cam * (cam_g + cam_f), logs
