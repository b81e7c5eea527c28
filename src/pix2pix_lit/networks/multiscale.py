"""Multi-scale discriminator of pix2pixHD (Wang et al. 2018, Sec. 3.2)."""

from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks.patchgan import PatchDiscriminator


class MultiscaleDiscriminator(nn.Module):
    """D_1, ..., D_K: identical PatchGANs applied to the input at K resolutions.

    D_k sees the input down-sampled k − 1 times by AvgPool2d(3, stride 2, padding 1) that
    ignores the padding, so the coarsest discriminator has the largest effective receptive
    field (global consistency) and the finest one attends to detail.

    Input (N, in_channels, H, W). Output: one list per scale, finest first, holding the
    output of every layer group of that scale's :class:`PatchDiscriminator`; the last element
    of each inner list is that scale's logits (N, 1, h_k, w_k), the others are the
    intermediate features used by the feature-matching loss.
    """

    def __init__(
        self,
        in_channels: int = 6,
        ndf: int = 64,
        n_layers: int = 3,
        num_scales: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if num_scales < 1:
            raise ConfigError(f"num_scales={num_scales} must be >= 1")
        self.scales = nn.ModuleList(
            PatchDiscriminator(
                in_channels, ndf, n_layers, norm, spectral_norm, init_type, init_gain
            )
            for _ in range(num_scales)
        )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        outputs = []
        for k, discriminator in enumerate(self.scales):
            if k > 0:
                x = self.downsample(x)
            outputs.append(discriminator.forward_features(x))
        return outputs
