"""LightningModules: the shared training machinery and one module per task."""

from pix2pix_lit.tasks.base import TranslationTask
from pix2pix_lit.tasks.classifier import DigitClassifierTask
from pix2pix_lit.tasks.cyclegan import CycleGAN
from pix2pix_lit.tasks.dtn import DTN
from pix2pix_lit.tasks.pix2pix import Pix2Pix
from pix2pix_lit.tasks.segmenter import Segmenter
from pix2pix_lit.tasks.ugatit import UGATIT

__all__ = [
    "DTN",
    "UGATIT",
    "CycleGAN",
    "DigitClassifierTask",
    "Pix2Pix",
    "Segmenter",
    "TranslationTask",
]
