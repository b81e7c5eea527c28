"""Objectives: GAN losses, the pix2pix and cycle objectives and the fake-image history pool."""

from pix2pix_lit.losses.cycle import CycleGANObjective, CycleOutputs, UGATITObjective
from pix2pix_lit.losses.dtn import DTNObjective
from pix2pix_lit.losses.gan import GAN_MODES, GANLoss, gradient_penalty
from pix2pix_lit.losses.pix2pix import Pix2PixObjective, feature_matching_loss
from pix2pix_lit.losses.pool import ImagePool

__all__ = [
    "GAN_MODES",
    "CycleGANObjective",
    "CycleOutputs",
    "DTNObjective",
    "GANLoss",
    "ImagePool",
    "Pix2PixObjective",
    "UGATITObjective",
    "feature_matching_loss",
    "gradient_penalty",
]
