"""Layer-Instance Normalisation of U-GAT-IT (Kim et al. 2020, Sec. 2.1.1)."""

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

_EPS = 1e-5


def _layer_instance_mix(x: Tensor, rho: Tensor) -> Tensor:
    """ρ·â_I + (1 − ρ)·â_L: ``x`` (N, C, H, W) standardised per channel (instance norm, â_I)
    and over all channels (layer norm, â_L), mixed per channel by ``rho`` (1, C, 1, 1)."""
    # Departure from the official U-GAT-IT code (znxlwm/UGATIT-pytorch, networks.py): it takes
    # torch.var of torch.var over H then W (an unbiased variance of per-row variances), which
    # is not σ² of Sec. 2.1.1's normalisation. We use the plain (biased) variance over the
    # normalised axes, as nn.InstanceNorm2d / nn.LayerNorm do, so â_I and â_L have unit variance.
    in_var, in_mean = torch.var_mean(x, dim=(2, 3), correction=0, keepdim=True)
    ln_var, ln_mean = torch.var_mean(x, dim=(1, 2, 3), correction=0, keepdim=True)
    x_in = (x - in_mean) / torch.sqrt(in_var + _EPS)
    x_ln = (x - ln_mean) / torch.sqrt(ln_var + _EPS)
    return rho * x_in + (1 - rho) * x_ln


class AdaLIN(nn.Module):
    """Adaptive Layer-Instance Normalisation.

    AdaLIN(a, γ, β) = γ·(ρ·â_I + (1 − ρ)·â_L) + β, with γ, β (N, C) computed from the
    attention features by the generator's MLP and ρ ∈ [0, 1] a learned per-channel
    parameter, initialised to 0.9 (mostly instance norm) and clipped after each update
    (:func:`clip_rho_`). Shape (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.rho = nn.Parameter(torch.full((1, num_features, 1, 1), 0.9))

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        mixed = _layer_instance_mix(x, self.rho)
        return mixed * gamma[:, :, None, None] + beta[:, :, None, None]


class LIN(nn.Module):
    """Layer-Instance Normalisation: AdaLIN with γ, β learned per channel instead of computed.

    ρ starts at 0 (pure layer norm), γ at 1 and β at 0. Shape (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.rho = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return _layer_instance_mix(x, self.rho) * self.gamma + self.beta


def clip_rho_(net: nn.Module) -> nn.Module:
    """Clamp ρ of every :class:`AdaLIN` and :class:`LIN` in ``net`` to [0, 1], in place.

    Gradient steps can push ρ outside the interval where ρ·IN + (1 − ρ)·LN is an
    interpolation; U-GAT-IT clips it after every generator update. Returns ``net``.
    """
    _clip_rho([m for m in net.modules() if isinstance(m, AdaLIN | LIN)])
    return net


def clip_rho_after_steps(optimizer: Optimizer, modules: Iterable[nn.Module]) -> None:
    """Clip ρ of the :class:`AdaLIN` and :class:`LIN` layers among ``modules`` whose ρ
    ``optimizer`` trains, after every step it takes (the authors' ``RhoClipper``, applied after
    each generator update); nothing when it trains none.

    A hook of the optimizer rather than a call after each step: every task, and every path of
    a step (eager, skipped when not finite, replayed from a CUDA graph), then clips exactly when
    ρ has moved.
    """
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    layers = [m for m in modules if isinstance(m, AdaLIN | LIN) and id(m.rho) in trained]
    if layers:
        optimizer.register_step_post_hook(lambda *_: _clip_rho(layers))


def _clip_rho(layers: list[AdaLIN | LIN]) -> None:
    with torch.no_grad():
        for layer in layers:
            layer.rho.clamp_(0.0, 1.0)
