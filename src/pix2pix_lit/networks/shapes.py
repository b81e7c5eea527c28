"""Input sizes the networks accept: the one place that states each generator's size rule, and
the check that turns an opaque shape mismatch into an actionable error."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError


@dataclass(frozen=True)
class SizeRule:
    """The input sizes a generator accepts: sides divisible by ``multiple``; with ``fixed``,
    only ``fixed`` x ``fixed`` (U-GAT-IT's full generator)."""

    multiple: int = 1
    fixed: int | None = None


def size_rule(generator: nn.Module) -> SizeRule:
    """What input sizes ``generator`` accepts (any size for generators not known here).

    U-Net with ``num_downs`` levels: multiples of ``2**num_downs`` (U-Net256: 256, U-Net128:
    128); ResNet generators: multiples of 4 (two stride-2 down-samplings); U-GAT-IT: multiples
    of 4, and exactly ``img_size`` for its full (non-light) variant. The data modules
    (``data.preprocess=none``/``scale_width``), evaluate and predict all use this.
    """
    # Imported here: the generator modules import this one for require_divisible_size.
    from pix2pix_lit.networks.resnet import ResnetGenerator
    from pix2pix_lit.networks.ugatit import UGATITGenerator
    from pix2pix_lit.networks.unet import UnetGenerator

    if isinstance(generator, UnetGenerator):
        return SizeRule(2**generator.num_downs)
    if isinstance(generator, ResnetGenerator):
        return SizeRule(4)
    if isinstance(generator, UGATITGenerator):
        return SizeRule(4, None if generator.light else generator.img_size)
    return SizeRule()


def require_divisible_size(x: Tensor, factor: int, network: str) -> None:
    """Raise ConfigError unless the height and width of ``x`` (N, C, H, W) are multiples of
    ``factor``: a network that down-samples by ``factor`` and up-samples back would otherwise
    return an image of a different size (or fail deep inside a convolution)."""
    height, width = x.shape[-2:]
    if height % factor or width % factor:
        raise ConfigError(
            f"{network} needs input height and width divisible by {factor}, got {height}x{width};"
            f" set data.crop_size to a multiple of {factor}"
        )
