"""U-Net generator of pix2pix (Isola et al. 2017, Sec. 3.2.1 and Appendix 6.1.1)."""

from typing import Literal

import torch
from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks.init import init_weights
from pix2pix_lit.networks.norm import conv_bias, get_norm_layer
from pix2pix_lit.networks.shapes import SizeRule, require_divisible_size


class UnetBlock(nn.Module):
    """One level of the U-Net: down-sample, run the inner levels, up-sample, add the skip.

    With C_out = ``outer_channels`` and C_in = ``inner_channels``, a block maps
    (N, in_channels, H, W) to (N, C_out, H, W) when it is the outermost level, else to
    (N, in_channels + C_out, H, W) (its input concatenated with the up-sampled result) or,
    without skip connections, to (N, C_out, H, W). The convolutions are 4×4 with stride 2,
    padding 1, so each level halves / doubles the resolution. In the paper's notation
    (Ck = Conv-BatchNorm-ReLU with k filters, CDk = with 50% dropout):

    * outermost: down = [Conv], up = [ReLU, ConvT, Tanh]
    * middle:    down = [LeakyReLU(0.2), Conv, Norm], up = [ReLU, ConvT, Norm, (Dropout 0.5)]
    * innermost: down = [LeakyReLU(0.2), Conv],       up = [ReLU, ConvT, Norm]

    The innermost level has no down-norm: its output is 1×1 for a 256×256 input with 8 levels,
    and batch norm over a single pixel with batch size 1 would set every activation to zero.
    """

    def __init__(
        self,
        outer_channels: int,
        inner_channels: int,
        in_channels: int | None = None,
        submodule: "UnetBlock | None" = None,
        position: Literal["outermost", "middle", "innermost"] = "middle",
        norm: str = "batch",
        use_dropout: bool = False,
        skip_connections: bool = True,
    ) -> None:
        super().__init__()
        if position not in ("outermost", "middle", "innermost"):
            raise ValueError(f"position={position!r}; choose 'outermost', 'middle' or 'innermost'")
        self.outermost = position == "outermost"
        self.skip_connections = skip_connections
        in_channels = outer_channels if in_channels is None else in_channels
        norm_layer = get_norm_layer(norm)
        bias = conv_bias(norm)
        # The up-conv reads what the inner level returns: with skips, that level's input
        # concatenated with its output; the innermost level has no inner level to return it.
        up_in = (
            inner_channels
            if position == "innermost" or not skip_connections
            else 2 * inner_channels
        )

        down_conv = nn.Conv2d(in_channels, inner_channels, 4, stride=2, padding=1, bias=bias)
        # The outermost up-conv is followed by Tanh, not a norm, so it keeps its bias.
        up_conv = nn.ConvTranspose2d(
            up_in, outer_channels, 4, stride=2, padding=1, bias=self.outermost or bias
        )
        if position == "outermost":
            down = [down_conv]
            up = [nn.ReLU(True), up_conv, nn.Tanh()]
        elif position == "innermost":
            down = [nn.LeakyReLU(0.2, True), down_conv]
            up = [nn.ReLU(True), up_conv, norm_layer(outer_channels)]
        else:
            down = [nn.LeakyReLU(0.2, True), down_conv, norm_layer(inner_channels)]
            up = [nn.ReLU(True), up_conv, norm_layer(outer_channels)]
            if use_dropout:
                up.append(nn.Dropout(0.5))

        self.down = nn.Sequential(*down)
        self.submodule = nn.Identity() if submodule is None else submodule
        self.up = nn.Sequential(*up)

    def forward(self, x: Tensor) -> Tensor:
        y = self.up(self.submodule(self.down(x)))
        if self.outermost or not self.skip_connections:
            return y
        return torch.cat([x, y], dim=1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net: an encoder-decoder with skip connections between mirrored layers.

    Encoder C64-C128-C256-C512-C512-C512-C512-C512 and decoder CD512-CD1024-CD1024-C1024-
    C1024-C512-C256-C128 (doubled widths from the skips) for ``num_downs=8``, ``ngf=64``.
    Each extra level beyond 5 adds an ngf·8 block with dropout, the paper's source of noise z.

    Input (N, in_channels, H, W) with H and W divisible by 2**num_downs;
    output (N, out_channels, H, W) in [-1, 1].
    ``skip_connections=False`` gives the paper's "encoder-decoder" ablation.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = True,
        skip_connections: bool = True,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ConfigError(
                f"num_downs={num_downs} is too small; the U-Net needs num_downs >= 5"
                " (8 for 256x256 inputs, 7 for 128x128)"
            )
        self.num_downs = num_downs
        shared = {"norm": norm, "skip_connections": skip_connections}

        block = UnetBlock(ngf * 8, ngf * 8, position="innermost", **shared)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **shared)
        block = UnetBlock(ngf * 4, ngf * 8, submodule=block, **shared)
        block = UnetBlock(ngf * 2, ngf * 4, submodule=block, **shared)
        block = UnetBlock(ngf, ngf * 2, submodule=block, **shared)
        self.model = UnetBlock(
            out_channels,
            ngf,
            in_channels=in_channels,
            submodule=block,
            position="outermost",
            **shared,
        )
        init_weights(self, init_type, init_gain)

    def size_rule(self) -> SizeRule:
        """Sides divisible by 2**num_downs: each level halves them."""
        return SizeRule(2**self.num_downs)

    def forward(self, x: Tensor) -> Tensor:
        multiple = self.size_rule().multiple
        require_divisible_size(x, multiple, f"UnetGenerator(num_downs={self.num_downs})")
        return self.model(x)
