"""Per-image similarity between generated and target images: L1, PSNR, SSIM and MS-SSIM.

Inputs are (N, C, H, W) tensors in [-1, 1] (the generator's tanh range). L1 is measured there,
like the training loss and ``val/L1``; PSNR, SSIM and MS-SSIM are measured on the images mapped
to [0, 1] (data range 1), like ``val/PSNR`` and ``val/SSIM``. Every score is per image, so a
split's score is the mean over its images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

# Identical images have an infinite PSNR; capping keeps means and JSON finite. 100 dB is
# an MSE of 1e-10 on [0, 1] images, far below any real difference between two 8-bit images
# (one grey level in one pixel of a 256x256 RGB image is about 101 dB).
PSNR_CAP_DB = 100.0
# MS-SSIM's fifth scale sees the image down-sampled 16 times and still needs room for the 11x11
# window: torchmetrics requires side // 16 > 10 for its default 5 scales.
MS_SSIM_MIN_SIZE = 176


@dataclass(frozen=True)
class ImageScores:
    """Scores of a batch: ``scores[name]`` is an (N,) tensor, one value per image.

    ``unavailable`` maps a metric that could not be computed for this batch to the reason.
    """

    scores: dict[str, Tensor]
    unavailable: dict[str, str] = field(default_factory=dict)


def to_unit_range(images: Tensor) -> Tensor:
    """Map images from [-1, 1] to [0, 1] (clamping, as generator outputs may overshoot)."""
    return (images.float().clamp(-1, 1) + 1) / 2


def l1_error(output: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference per image, in [-1, 1] units (0 = identical, 2 = opposite)."""
    return (output.float() - target.float()).abs().flatten(1).mean(1)


def psnr(output: Tensor, target: Tensor) -> Tensor:
    """PSNR per image in dB on [0, 1] images, capped at :data:`PSNR_CAP_DB`."""
    per_image = peak_signal_noise_ratio(
        to_unit_range(output),
        to_unit_range(target),
        data_range=1.0,
        reduction="none",
        dim=(1, 2, 3),
    )
    return per_image.clamp(max=PSNR_CAP_DB)


def ssim(output: Tensor, target: Tensor) -> Tensor:
    """SSIM per image on [0, 1] images (11x11 Gaussian window, sigma 1.5)."""
    return structural_similarity_index_measure(
        to_unit_range(output), to_unit_range(target), data_range=1.0, reduction="none"
    )


def ms_ssim(output: Tensor, target: Tensor) -> Tensor:
    """MS-SSIM per image on [0, 1] images: Wang et al.'s 5 scales and weights.

    Both sides must be at least :data:`MS_SSIM_MIN_SIZE` px (else ValueError). A smaller
    window or fewer scales would make it work on smaller images, but as a different metric
    whose numbers do not compare with published MS-SSIM.
    """
    return multiscale_structural_similarity_index_measure(
        to_unit_range(output), to_unit_range(target), data_range=1.0, reduction="none"
    )


def image_scores(output: Tensor, target: Tensor) -> ImageScores:
    """``L1``, ``PSNR``, ``SSIM`` and ``MS-SSIM`` of each image of a batch.

    MS-SSIM is reported as unavailable, with the reason, for images too small for it.
    """
    scores = {
        "L1": l1_error(output, target),
        "PSNR": psnr(output, target),
        "SSIM": ssim(output, target),
    }
    unavailable = {}
    height, width = output.shape[-2:]
    if min(height, width) >= MS_SSIM_MIN_SIZE:
        scores["MS-SSIM"] = ms_ssim(output, target)
    else:
        unavailable["MS-SSIM"] = (
            f"needs images of at least {MS_SSIM_MIN_SIZE}x{MS_SSIM_MIN_SIZE} px for its 5 scales "
            f"and 11x11 window, got {height}x{width}"
        )
    return ImageScores({k: v.detach().cpu() for k, v in scores.items()}, unavailable)
