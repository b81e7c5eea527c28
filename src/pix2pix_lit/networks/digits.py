"""The digits networks of the Domain Transfer Network (Taigman et al. 2017, section 5.1).

f (:class:`DigitEncoder`) maps a digit to a vector, g (:class:`DigitDecoder`) a vector back to
an image, D (:class:`DigitDiscriminator`) an image to class logits; :class:`DigitClassifier`
is f with a linear head, trained on labelled digits (f on S, the evaluator C_T on T). Sizes
must be divisible by 8: three stride-2 stages, then one convolution over the remaining
``image_size / 8`` square (4x4 for the paper's 32x32 digits).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks.init import init_weights


def _final_kernel(image_size: int, key: str) -> int:
    if image_size < 8 or image_size % 8:
        raise ConfigError(f"{key}={image_size} must be a multiple of 8 (the digits use 32)")
    return image_size // 8


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int, padding: int):
    return [
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class DigitEncoder(nn.Module):
    """f: four conv-BN-ReLU blocks, (N, C, S, S) → (N, features).

    Paper (5.1): four convolutional layers of 64, 128, 256 and 128 filters with ReLU. As in
    the public reimplementations (yunjey/domain-transfer-network) the first three are 3x3
    with stride 2 instead of convolution + max pooling, each with batch norm, and the fourth
    covers the S/8 x S/8 map: 32x32 → 16x16x64 → 8x8x128 → 4x4x256 → 1x1x128.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        widths: Sequence[int] = (64, 128, 256),
        features: int = 128,
    ) -> None:
        super().__init__()
        kernel = _final_kernel(image_size, "image_size")
        if len(widths) != 3:
            raise ConfigError(f"widths={list(widths)} must give the three stride-2 blocks' widths")
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += _conv_bn_relu(channels, width, 3, 2, 1)
            channels = width
        layers += _conv_bn_relu(channels, features, kernel, 1, 0)
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.in_channels = in_channels
        self.image_size = image_size
        self.features = features

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class DigitClassifier(nn.Module):
    """f followed by a linear layer: (N, C, S, S) → logits (N, out_channels), one per class.

    The DTN's f is the ``encoder`` of one trained on the labelled source (the paper's SVHN
    classifier); its evaluator C_T is one trained on the target (the paper's MNIST one, of
    the same architecture).
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        widths: Sequence[int] = (64, 128, 256),
        features: int = 128,
        out_channels: int = 10,
    ) -> None:
        super().__init__()
        self.encoder = DigitEncoder(in_channels, image_size, widths, features)
        self.head = nn.Linear(features, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))


class DigitDecoder(nn.Module):
    """g: (N, in_channels) → (N, out_channels, S, S) in [-1, 1]; ``in_channels`` are f's
    features (a 1x1 map of them).

    Paper (5.1): four blocks of deconvolution, batch norm and ReLU with a tanh terminal. Here:
    a transposed convolution from 1x1 to S/8 x S/8 (8·ngf), two stride-2 ones (4·ngf, 2·ngf),
    each with batch norm + ReLU, and a stride-2 one to ``out_channels`` with tanh:
    128 → 4x4x512 → 8x8x256 → 16x16x128 → 32x32x1 for ngf=64 (yunjey's widths).
    """

    def __init__(
        self,
        in_channels: int = 128,
        out_channels: int = 1,
        image_size: int = 32,
        ngf: int = 64,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        kernel = _final_kernel(image_size, "image_size")
        widths = (8 * ngf, 4 * ngf, 2 * ngf)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_channels, widths[0], kernel, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for previous, width in pairwise(widths):
            layers += [
                nn.ConvTranspose2d(previous, width, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.image_size = image_size
        init_weights(self, init_type, init_gain)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])


class DigitDiscriminator(nn.Module):
    """D: (N, in_channels, S, S) → logits (N, num_outputs).

    Paper (5.1): four batch-normalised convolutional layers with ReLU. Three 3x3 stride-2
    convolutions (ndf, 2·ndf, 4·ndf; batch norm after the second and third: none on the
    first, as in DCGAN and yunjey's reimplementation) and one over the
    S/8 x S/8 map to ``num_outputs``: 3 for the paper's ternary D (G(source), G(target), real
    target), 1 for a binary real/fake D.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 32,
        ndf: int = 128,
        num_outputs: int = 3,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        kernel = _final_kernel(image_size, "image_size")
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 3, 2, 1),
            nn.ReLU(inplace=True),
            *_conv_bn_relu(ndf, 2 * ndf, 3, 2, 1),
            *_conv_bn_relu(2 * ndf, 4 * ndf, 3, 2, 1),
            nn.Conv2d(4 * ndf, num_outputs, kernel, 1, 0),
            nn.Flatten(),
        )
        self.in_channels = in_channels
        self.num_outputs = num_outputs
        init_weights(self, init_type, init_gain)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
