"""The Domain Transfer Network's objective (Taigman, Polyak, Wolf, ICLR 2017, section 4).

With G = g ∘ f, source images s and target images t:

* L_D = −E_s log D_1(G(s)) − E_t log D_2(G(t)) − E_t log D_3(t)  (ternary D; classes 1, 2, 3
  are indices 0, 1, 2 here);
* L_GANG = −E_s log D_3(G(s)) − E_t log D_3(G(t));
* L_CONST = E_s d(f(s), f(G(s))), d the mean squared error;
* L_TID = E_t d_2(t, G(t)), d_2 the mean squared error;
* L_TV(z) = Σ_ij ((z_i,j+1 − z_ij)² + (z_i+1,j − z_ij)²)^(B/2), B = 1, here averaged over pixels;
* L_G = L_GANG + α L_CONST + β L_TID + γ L_TV.

The paper's digits setting is α = β = 15, γ = 0. ``discriminator="binary"`` replaces the
ternary D by a real/fake one (as yunjey/domain-transfer-network does): L_D is the binary
cross-entropy of G(s) and G(t) as fake and t as real, L_GANG that of G(s) and G(t) as real.
Expectations are batch means; the paper writes sums.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError

DISCRIMINATOR_MODES: tuple[str, ...] = ("ternary", "binary")
#: D's classes: G(source), G(target), real target
FAKE_SOURCE, FAKE_TARGET, REAL_TARGET = 0, 1, 2
# inside L_TV's square root, so its gradient stays finite on flat regions
_TV_EPS = 1e-8

Logs = dict[str, Tensor]


def total_variation(images: Tensor) -> Tensor:
    """The paper's L_TV with B = 1, averaged over the (H−1)(W−1) pixel positions and the
    batch: mean of sqrt(Δx² + Δy²) with forward differences, summed over channels."""
    dx = images[..., :-1, 1:] - images[..., :-1, :-1]
    dy = images[..., 1:, :-1] - images[..., :-1, :-1]
    return (dx.square() + dy.square() + _TV_EPS).sqrt().sum(1).mean()


class DTNObjective:
    """L_D and L_G of the DTN for the logits of a D with 3 (ternary) or 1 (binary) outputs."""

    def __init__(
        self,
        alpha: float = 15.0,
        beta: float = 15.0,
        gamma: float = 0.0,
        discriminator: str = "ternary",
        conditional: bool = False,
    ) -> None:
        if conditional:
            raise ConfigError(
                "loss.conditional=true: the DTN's D judges single images; set it false"
            )
        for key, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if value < 0:
                raise ConfigError(
                    f"loss.{key}={value} must be >= 0 (the paper's digits: 15, 15, 0)"
                )
        if discriminator not in DISCRIMINATOR_MODES:
            raise ConfigError(
                f"loss.discriminator={discriminator!r} is not one of {', '.join(DISCRIMINATOR_MODES)}"
            )
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.discriminator = discriminator

    @property
    def num_outputs(self) -> int:
        """The number of logits D must return."""
        return 3 if self.discriminator == "ternary" else 1

    def _classification(self, logits: Tensor, target_class: int) -> Tensor:
        """−E log D_c(x) for the ternary D; for the binary one the BCE against real
        (c = REAL_TARGET) or fake (the two other classes)."""
        if self.discriminator == "ternary":
            labels = torch.full((logits.shape[0],), target_class, device=logits.device)
            return F.cross_entropy(logits.float(), labels)
        real = torch.full_like(logits, float(target_class == REAL_TARGET))
        return F.binary_cross_entropy_with_logits(logits.float(), real.float())

    def discriminator_loss(
        self, d: nn.Module, fake_source: Tensor, fake_target: Tensor, real_target: Tensor
    ) -> tuple[Tensor, Logs]:
        """L_D on G(s), G(t) (detached here) and t."""
        terms = {
            "D_fake_source": self._classification(d(fake_source.detach()), FAKE_SOURCE),
            "D_fake_target": self._classification(d(fake_target.detach()), FAKE_TARGET),
            "D_real_target": self._classification(d(real_target), REAL_TARGET),
        }
        loss = sum(terms.values())
        return loss, {"D": loss.detach(), **{k: v.detach() for k, v in terms.items()}}

    def generator_loss(
        self,
        d: nn.Module,
        f: nn.Module,
        f_source: Tensor,
        fake_source: Tensor,
        real_target: Tensor,
        fake_target: Tensor,
    ) -> tuple[Tensor, Logs]:
        """L_G. ``f_source`` = f(s) (a constant), ``f`` the frozen encoder applied to G(s)
        (given grey images it sees them repeated to its input channels)."""
        gang = self._classification(d(fake_source), REAL_TARGET) + self._classification(
            d(fake_target), REAL_TARGET
        )
        terms = {"G_GANG": gang}
        if self.alpha > 0:
            terms["G_CONST"] = F.mse_loss(f(fake_source).float(), f_source.float())
        if self.beta > 0:
            terms["G_TID"] = F.mse_loss(fake_target.float(), real_target.float())
        if self.gamma > 0:
            terms["G_TV"] = total_variation(torch.cat([fake_source, fake_target]).float())
        weights = {"G_GANG": 1.0, "G_CONST": self.alpha, "G_TID": self.beta, "G_TV": self.gamma}
        loss = sum(weights[name] * value for name, value in terms.items())
        return loss, {"G": loss.detach(), **{k: v.detach() for k, v in terms.items()}}
