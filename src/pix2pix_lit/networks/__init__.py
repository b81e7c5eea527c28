"""Generators and discriminators for image-to-image translation.

Generators map (N, in_channels, H, W) to (N, out_channels, H, W) in [-1, 1]. Discriminators
return logits as a Tensor, a flat list of Tensors (each a prediction) or, for the multi-scale
discriminator, a list of per-scale lists whose last element is the prediction.
"""

from pix2pix_lit.networks.cam import CAMAttention
from pix2pix_lit.networks.digits import (
    DigitClassifier,
    DigitDecoder,
    DigitDiscriminator,
    DigitEncoder,
)
from pix2pix_lit.networks.fcn import FCNSegmenter
from pix2pix_lit.networks.init import INIT_TYPES, init_weights
from pix2pix_lit.networks.lin import LIN, AdaLIN, clip_rho_
from pix2pix_lit.networks.multiscale import MultiscaleDiscriminator
from pix2pix_lit.networks.norm import NORM_TYPES, add_spectral_norm, conv_bias, get_norm_layer
from pix2pix_lit.networks.patchgan import PatchDiscriminator, PixelDiscriminator, receptive_field
from pix2pix_lit.networks.resnet import PADDING_TYPES, ResnetBlock, ResnetGenerator
from pix2pix_lit.networks.shapes import SizeRule, require_divisible_size, size_rule
from pix2pix_lit.networks.ugatit import (
    GlobalLocalDiscriminator,
    ResnetAdaLINBlock,
    UGATITDiscriminator,
    UGATITGenerator,
)
from pix2pix_lit.networks.unet import UnetBlock, UnetGenerator

__all__ = [
    "INIT_TYPES",
    "LIN",
    "NORM_TYPES",
    "PADDING_TYPES",
    "AdaLIN",
    "CAMAttention",
    "DigitClassifier",
    "DigitDecoder",
    "DigitDiscriminator",
    "DigitEncoder",
    "FCNSegmenter",
    "GlobalLocalDiscriminator",
    "MultiscaleDiscriminator",
    "PatchDiscriminator",
    "PixelDiscriminator",
    "ResnetAdaLINBlock",
    "ResnetBlock",
    "ResnetGenerator",
    "SizeRule",
    "UGATITDiscriminator",
    "UGATITGenerator",
    "UnetBlock",
    "UnetGenerator",
    "add_spectral_norm",
    "clip_rho_",
    "conv_bias",
    "get_norm_layer",
    "init_weights",
    "receptive_field",
    "require_divisible_size",
    "size_rule",
]
