"""A small FCN-8s segmenter (Long, Shelhamer & Darrell 2015), the network behind the FCN-score.

pix2pix scores labels → photo by segmenting the generated photos with an FCN-8s trained on
real photos (Isola et al. 2017, Sec. 4.2). FCN-8s is a VGG-16 classifier made fully
convolutional, whose class scores at strides 32, 16 and 8 are upsampled and summed ("skip"
fusion, Long et al. Sec. 4.2). The same fusion is kept here, on a narrower VGG-style encoder.

Departures from FCN-8s, for a network trained from scratch on 400 facades at 128x128 on a CPU
(no ImageNet weights can be downloaded here):
* five stages of two 3x3 convolutions with batch norm (VGG-16: 2-2-3-3-3 convolutions without
  norm, 64-512 channels), widths ``width``·(1, 2, 4, 8, 16) — 1,185,172 parameters with 12 classes for
  ``width=16`` instead of 134 M;
* no fc6/fc7 (7x7 convolutions of 4096 channels at stride 32): a 1x1 classifier instead;
* bilinear upsampling (FCN-8s initialises its deconvolutions bilinearly; the fixed ones lose
  little, Long et al. Sec. 3.3) and no 100 px input padding (inputs divisible by 32 instead).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from pix2pix_lit.networks.shapes import require_divisible_size

STRIDE = 32


def _stage(in_channels: int, out_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for channels in (in_channels, out_channels):
        layers += [
            nn.Conv2d(channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class FCNSegmenter(nn.Module):
    """FCN-8s-style segmenter: (N, in_channels, H, W) in [-1, 1] → class logits
    (N, out_channels, H, W), one map per class (``out_channels`` = K classes).

    H and W must be divisible by 32 (five 2x poolings). Scores s32 (after stage 5), s16
    (stage 4) and s8 (stage 3) are fused as up2(up2(s32) + s16) + s8, then upsampled 8x.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 12, width: int = 16) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(5)]
        stages, channels = [], in_channels
        for stage_width in widths:
            stages.append(_stage(channels, stage_width))
            channels = stage_width
        self.stages = nn.ModuleList(stages)
        self.score8 = nn.Conv2d(widths[2], out_channels, 1)
        self.score16 = nn.Conv2d(widths[3], out_channels, 1)
        self.score32 = nn.Conv2d(widths[4], out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        require_divisible_size(x, STRIDE, "FCNSegmenter")
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        score = _up(self.score32(features[4]), 2) + self.score16(features[3])
        score = _up(score, 2) + self.score8(features[2])
        return _up(score, 8)


def _up(x: Tensor, factor: int) -> Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
