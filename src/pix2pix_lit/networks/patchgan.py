"""PatchGAN discriminators of pix2pix (Isola et al. 2017, Sec. 3.2.2 and Appendix 6.1.2)."""

from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks.init import init_weights
from pix2pix_lit.networks.norm import add_spectral_norm, conv_bias, get_norm_layer


class PatchDiscriminator(nn.Module):
    """N-layer PatchGAN: classifies each overlapping patch of the input as real or fake.

    For ``n_layers=3`` and ``ndf=64`` this is the paper's 70×70 discriminator
    C64-C128-C256-C512 followed by a 1-channel convolution, where Ck = Conv 4×4, Norm,
    LeakyReLU(0.2), the first C64 without norm. All convolutions but the last two have
    stride 2 and widths ndf·min(2^n, 8). ``n_layers=1`` gives a 16×16 receptive field,
    ``n_layers=5`` 286×286 (the paper's "ImageGAN" for 256×256 inputs).

    Input (N, in_channels, H, W): cat(A, B) for a conditional GAN, B alone otherwise.
    Output: logits (N, 1, h, w), one per patch (h = H/2^n_layers - 2 for H divisible by it).

    The layers are kept in groups (conv, [norm], activation) so that
    :meth:`forward_features` can return every group's output for feature matching.
    """

    def __init__(
        self,
        in_channels: int = 6,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        spectral_norm: bool = False,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ConfigError(f"n_layers={n_layers} must be >= 1 (3 gives the 70x70 PatchGAN)")
        norm_layer = get_norm_layer(norm)
        bias = conv_bias(norm)

        groups = [
            nn.Sequential(
                nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)
            )
        ]
        channels = ndf
        for n in range(1, n_layers + 1):
            out_channels = ndf * min(2**n, 8)
            # The last of these convolutions keeps the resolution, enlarging the receptive
            # field without shrinking the patch grid further.
            stride = 2 if n < n_layers else 1
            groups.append(
                nn.Sequential(
                    nn.Conv2d(channels, out_channels, 4, stride=stride, padding=1, bias=bias),
                    norm_layer(out_channels),
                    nn.LeakyReLU(0.2, True),
                )
            )
            channels = out_channels
        groups.append(nn.Sequential(nn.Conv2d(channels, 1, 4, stride=1, padding=1)))
        self.groups = nn.ModuleList(groups)

        init_weights(self, init_type, init_gain)
        if spectral_norm:
            add_spectral_norm(self)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The output of every layer group, the last being the logits (N, 1, h, w)."""
        features = []
        for group in self.groups:
            x = group(x)
            features.append(x)
        return features

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)[-1]


class PixelDiscriminator(nn.Module):
    """1×1 PatchGAN ("PixelGAN"): classifies each pixel independently.

    [Conv1×1 ndf, LeakyReLU(0.2)], [Conv1×1 2·ndf, Norm, LeakyReLU(0.2)], Conv1×1 → 1.
    Input (N, in_channels, H, W); output logits (N, 1, H, W); receptive field 1×1.
    """

    def __init__(
        self,
        in_channels: int = 6,
        ndf: int = 64,
        norm: str = "batch",
        spectral_norm: bool = False,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            get_norm_layer(norm)(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )
        init_weights(self, init_type, init_gain)
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def receptive_field(net: nn.Module) -> int:
    """Receptive field (in input pixels, per side) of one output unit of a chain of convolutions.

    Walks the Conv2d layers of ``net`` in registration order, treating them as applied one
    after the other, and accumulates backwards from a single output unit:
    r ← (r − 1)·s + d·(k − 1) + 1 for kernel k, stride s and dilation d. Padding, norms and
    point-wise activations do not change it. Meant for a single discriminator (not a
    :class:`~pix2pix_lit.networks.MultiscaleDiscriminator`, whose scales are parallel).
    """
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(net).__name__} has no Conv2d layers")
    field = 1
    for conv in reversed(convs):
        field = (field - 1) * conv.stride[0] + conv.dilation[0] * (conv.kernel_size[0] - 1) + 1
    return field
