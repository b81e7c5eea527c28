"""ResNet generator of CycleGAN (Zhu et al. 2017, Appendix 7.2), after Johnson et al. 2016."""

from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks.init import init_weights
from pix2pix_lit.networks.norm import conv_bias, get_norm_layer
from pix2pix_lit.networks.shapes import SizeRule, require_divisible_size

PADDING_TYPES = ("reflect", "replicate", "zero")


def padded_conv3x3(channels: int, padding_type: str, bias: bool) -> list[nn.Module]:
    """A size-preserving 3×3 convolution ``channels -> channels`` with the given padding."""
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias)]
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias)]
    if padding_type == "zero":
        return [nn.Conv2d(channels, channels, 3, padding=1, bias=bias)]
    raise ConfigError(
        f"padding_type={padding_type!r} is not a known padding; choose one of {PADDING_TYPES}"
    )


class ResnetBlock(nn.Module):
    """Residual block R_k: x + F(x), F = [pad, Conv3×3, Norm, ReLU, (Dropout 0.5), pad, Conv3×3,
    Norm], all with k = ``channels`` filters. Shape (N, k, H, W) -> (N, k, H, W)."""

    def __init__(
        self,
        channels: int,
        padding_type: str = "reflect",
        norm: str = "instance",
        use_dropout: bool = False,
        use_bias: bool = True,
    ) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        layers = [*padded_conv3x3(channels, padding_type, use_bias), norm_layer(channels)]
        layers.append(nn.ReLU(True))
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [*padded_conv3x3(channels, padding_type, use_bias), norm_layer(channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN generator c7s1-64, d128, d256, R256 × n_blocks, u128, u64, c7s1-3.

    * c7s1-k: reflection pad 3, Conv 7×7 stride 1 with k filters, Norm, ReLU
      (the last one maps to ``out_channels`` and ends in Tanh instead of Norm-ReLU);
    * dk: Conv 3×3 stride 2 (padding 1), Norm, ReLU — halves H and W;
    * Rk: :class:`ResnetBlock`;
    * uk: ConvTranspose 3×3 stride 2 (padding 1, output padding 1), Norm, ReLU — doubles H, W.

    Input (N, in_channels, H, W) with H and W divisible by 4; output (N, out_channels, H, W)
    in [-1, 1]. The paper uses 6 blocks for 128×128 and 9 for 256×256 images.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
        padding_type: str = "reflect",
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ConfigError(f"n_blocks={n_blocks} must be >= 0")
        norm_layer = get_norm_layer(norm)
        bias = conv_bias(norm)

        layers = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [
            ResnetBlock(ngf * 4, padding_type, norm, use_dropout, use_bias=bias)
            for _ in range(n_blocks)
        ]
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self, init_type, init_gain)

    def size_rule(self) -> SizeRule:
        """Sides divisible by 4: two stride-2 down-samplings."""
        return SizeRule(4)

    def forward(self, x: Tensor) -> Tensor:
        require_divisible_size(x, self.size_rule().multiple, "ResnetGenerator")
        return self.model(x)
