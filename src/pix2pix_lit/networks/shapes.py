"""Input-size rules of the networks, and checks that turn an opaque shape mismatch into an
actionable error."""

from dataclasses import dataclass

from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError


@dataclass(frozen=True)
class SizeRule:
    """The input sizes a network accepts: height and width divisible by ``multiple``; with
    ``fixed``, only ``fixed`` x ``fixed``."""

    multiple: int = 1
    fixed: int | None = None


def size_rule(net: nn.Module) -> SizeRule:
    """The rule ``net`` states with its ``size_rule()`` method; any size for a network without
    one. Every command asks this rather than knowing network classes."""
    state = getattr(net, "size_rule", None)
    return state() if callable(state) else SizeRule()


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
