"""LightningModules: the shared training machinery and one module per task."""

from pix2pix_lit.tasks.base import TranslationTask
from pix2pix_lit.tasks.pix2pix import Pix2Pix

__all__ = ["Pix2Pix", "TranslationTask"]
