"""Scores of generated images: per-image similarity, label-map segmentation, FID/KID."""

from pix2pix_lit.metrics.fid import DistributionScores, inception_extractor
from pix2pix_lit.metrics.image import PSNR_CAP_DB, ImageScores, image_scores
from pix2pix_lit.metrics.labels import (
    LABEL_METRICS,
    Palette,
    class_indices,
    confusion_matrix,
    label_scores,
    per_class_scores,
)

__all__ = [
    "LABEL_METRICS",
    "PSNR_CAP_DB",
    "DistributionScores",
    "ImageScores",
    "Palette",
    "class_indices",
    "confusion_matrix",
    "image_scores",
    "inception_extractor",
    "label_scores",
    "per_class_scores",
]
