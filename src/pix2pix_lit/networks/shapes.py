"""Input-size checks that turn an opaque shape mismatch into an actionable error."""

from torch import Tensor

from pix2pix_lit.errors import ConfigError


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
