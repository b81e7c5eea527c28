"""Adversarial objectives: the GAN loss in its common modes and the WGAN-GP gradient penalty."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError

#: What a discriminator may return: one prediction map, a flat list of predictions
#: (e.g. U-GAT-IT's patch and CAM logits), or one list per scale whose last element is the
#: prediction and the others intermediate features (pix2pixHD's multiscale discriminator).
DiscriminatorOutput = Tensor | Sequence[Tensor] | Sequence[Sequence[Tensor]]

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgangp")


def predictions(output: DiscriminatorOutput) -> list[Tensor]:
    """The prediction maps of a discriminator output, features dropped."""
    if isinstance(output, Tensor):
        return [output]
    return [item[-1] if isinstance(item, Sequence) else item for item in output]


def features(output: DiscriminatorOutput) -> list[list[Tensor]]:
    """The intermediate feature maps of a multiscale output (empty for other outputs)."""
    if isinstance(output, Tensor):
        return []
    return [list(item[:-1]) for item in output if isinstance(item, Sequence)]


class GANLoss(nn.Module):
    """Adversarial loss for one side of the game, averaged over all prediction maps.

    Modes (D(x) are raw logits; targets are tensors shaped like the prediction):

    * ``vanilla``: binary cross-entropy with logits, the objective of Goodfellow et al. 2014 and
      pix2pix (Isola et al. 2017, eq. 1) with the non-saturating generator loss.
    * ``lsgan``: least squares, (D(x) − t)² (Mao et al. 2017), CycleGAN's choice.
    * ``hinge``: D: relu(1 − D(real)) + relu(1 + D(fake)); G: −D(fake) (Lim & Ye 2017).
    * ``wgangp``: D: D(fake) − D(real), G: −D(fake) (Gulrajani et al. 2017); add
      :func:`gradient_penalty` to the discriminator loss.

    ``real_label`` below 1 gives one-sided label smoothing (Salimans et al. 2016) for the
    vanilla and lsgan modes; the other modes have no targets to smooth.
    """

    def __init__(self, gan_mode: str = "vanilla", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ConfigError(f"loss.gan_mode={gan_mode!r} is not one of {', '.join(GAN_MODES)}")
        self.gan_mode = gan_mode
        self.register_buffer("real_label", torch.tensor(real_label), persistent=False)
        self.register_buffer("fake_label", torch.tensor(fake_label), persistent=False)

    def forward(
        self, output: DiscriminatorOutput, target_is_real: bool, for_discriminator: bool = True
    ) -> Tensor:
        """Loss of ``output`` against the real (or fake) target.

        ``for_discriminator=False`` selects the generator's form of the hinge loss; the
        other modes use the same expression on both sides.
        """
        losses = [self._single(p, target_is_real, for_discriminator) for p in predictions(output)]
        return torch.stack(losses).mean()

    def _single(self, pred: Tensor, target_is_real: bool, for_discriminator: bool) -> Tensor:
        pred = pred.float()  # losses in fp32 even under autocast, as the scaler expects
        if self.gan_mode in ("vanilla", "lsgan"):
            label = self.real_label if target_is_real else self.fake_label
            target = label.to(pred.dtype).expand_as(pred)
            if self.gan_mode == "vanilla":
                return F.binary_cross_entropy_with_logits(pred, target)
            return F.mse_loss(pred, target)
        if self.gan_mode == "hinge" and for_discriminator:
            return F.relu(1.0 - pred).mean() if target_is_real else F.relu(1.0 + pred).mean()
        return -pred.mean() if target_is_real else pred.mean()


def gradient_penalty(
    discriminator: Callable[[Tensor], DiscriminatorOutput],
    real: Tensor,
    fake: Tensor,
    weight: float = 10.0,
) -> Tensor:
    """WGAN-GP penalty weight · E[(‖∇ D(x̂)‖₂ − 1)²] on x̂ = ε·real + (1 − ε)·fake.

    ``real`` and ``fake`` are the discriminator's inputs (for a conditional D, the
    concatenated pairs), shape (N, C, H, W); ε ~ U(0, 1) per sample.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    score = sum(p.float().sum() for p in predictions(discriminator(mixed)))
    (grad,) = torch.autograd.grad(score, mixed, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return weight * ((norm - 1.0) ** 2).mean()
