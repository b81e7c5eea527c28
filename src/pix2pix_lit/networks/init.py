"""Weight initialisation schemes of the reference pix2pix / CycleGAN code."""

from torch import nn
from torch.nn.utils import parametrize

from pix2pix_lit.errors import ConfigError

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")

_WEIGHTED_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise every convolution, linear and batch-norm layer of ``net`` in place.

    Conv / ConvTranspose / Linear weights are drawn from

    * ``"normal"``: N(0, gain²) — the pix2pix paper's N(0, 0.02);
    * ``"xavier"``: Glorot normal scaled by ``gain``;
    * ``"kaiming"``: He normal, fan-in mode (``gain`` is not used);
    * ``"orthogonal"``: a (semi-)orthogonal matrix scaled by ``gain``;

    and their biases are set to 0. BatchNorm2d weights are drawn from N(1, gain²) and biases
    set to 0. Other parameters (e.g. ρ, γ, β of U-GAT-IT's LIN) keep their own initial values.
    Returns ``net``.
    """
    if init_type not in INIT_TYPES:
        raise ConfigError(
            f"init_type={init_type!r} is not a known initialisation; choose one of {INIT_TYPES}"
        )
    for module in net.modules():
        if isinstance(module, _WEIGHTED_LAYERS):
            if parametrize.is_parametrized(module, "weight"):
                # Re-drawing the weight under spectral norm would leave its power-iteration
                # vectors describing the old weight, so σ(W) would be wrong until training.
                raise ValueError(
                    f"init_weights was called on a spectrally normalised {type(module).__name__};"
                    " initialise the network before add_spectral_norm"
                )
            _init_weighted_layer(module, init_type, gain)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    return net


def _init_weighted_layer(module: nn.Module, init_type: str, gain: float) -> None:
    if init_type == "normal":
        nn.init.normal_(module.weight, 0.0, gain)
    elif init_type == "xavier":
        nn.init.xavier_normal_(module.weight, gain=gain)
    elif init_type == "kaiming":
        nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
    else:
        nn.init.orthogonal_(module.weight, gain=gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
