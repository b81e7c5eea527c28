"""Normalisation layers chosen by name, and spectral normalisation of a whole network."""

from collections.abc import Callable
from functools import partial

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from pix2pix_lit.errors import ConfigError

NORM_TYPES = ("batch", "instance", "none")


def get_norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """Return a factory ``num_features -> nn.Module`` for the normalisation called ``norm``.

    * ``"batch"``: BatchNorm2d with learnable affine parameters and running statistics.
    * ``"instance"``: InstanceNorm2d without affine parameters or running statistics
      (what pix2pix and CycleGAN use; statistics are always those of the current image).
    * ``"none"``: Identity.
    """
    if norm == "batch":
        return partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        return partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "none":
        return lambda num_features: nn.Identity()
    raise ConfigError(f"norm={norm!r} is not a known normalisation; choose one of {NORM_TYPES}")


def conv_bias(norm: str) -> bool:
    """Whether a convolution followed by the normalisation ``norm`` needs its own bias.

    Batch norm's learnable shift β makes a preceding bias redundant. Instance norm here has no
    affine parameters, so the bias is kept as in the reference pix2pix code.
    """
    get_norm_layer(norm)  # raises ConfigError for an unknown name
    return norm != "batch"


def add_spectral_norm(net: nn.Module) -> nn.Module:
    """Spectrally normalise (Miyato et al. 2018) the weight of every Conv2d and Linear in ``net``.

    Call it after :func:`~pix2pix_lit.networks.init_weights`: the power-iteration vectors that
    estimate the largest singular value are computed from the weight at registration time.
    The parametrisation keeps one ``original`` weight per layer, so parameter counts are
    unchanged. Returns ``net`` (modified in place).
    """
    for module in list(net.modules()):
        if isinstance(module, nn.Conv2d | nn.Linear):
            spectral_norm(module)
    return net
