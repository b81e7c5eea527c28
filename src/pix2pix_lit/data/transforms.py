"""The reference's preprocessing modes, applied to an aligned (A, B) pair with one random draw.

``data.preprocess`` takes the modes of the reference implementation (its ``--preprocess``,
``data/base_dataset.py``) with their meanings:

=======================  ===========================================================  =====
mode                     training                                                      size
=======================  ===========================================================  =====
``resize_and_crop``      resize to ``load_size``², random ``crop_size``² crop          fixed
``scale_width_and_crop`` width to ``load_size`` (height keeps the aspect, >= crop),    fixed
                         random ``crop_size``² crop
``crop``                 random ``crop_size``² crop of the image at its native size    fixed
``scale_width``          width to ``load_size`` (height keeps the aspect, >= crop)     any
``none``                 the native size                                               any
=======================  ===========================================================  =====

then a random horizontal flip (``flip``). In the two modes without a fixed size the image is
resized to the nearest multiple of ``multiple`` on each side (the generator's input multiple,
:func:`pix2pix_lit.networks.shapes.size_rule`; the reference always uses 4 there).

Evaluation (validation/test) is deterministic: ``resize_and_crop`` resizes straight to
``crop_size``² (departure: the reference resizes to ``load_size`` and crops at random at test
time too), ``scale_width_and_crop`` scales the width to ``crop_size`` and takes the centre
``crop_size``² window, ``crop`` the centre window at the native size, and ``scale_width`` and
``none`` are as in training without the flip.

Resizing is Pillow's bicubic filter, as in the reference (torchvision's ``Resize`` on a PIL
image): it widens its kernel when shrinking, which antialiases. OpenCV's ``INTER_CUBIC`` (used
here before) does not. Measured on the 106 facades test photos (mean PSNR against Pillow):
shrunk 256 -> 143, ``INTER_CUBIC`` 32.4 dB, ``INTER_AREA`` 42.4 dB; enlarged 256 -> 286, 46.6
and 41.9 dB; this module's resize is Pillow's, identical to the reference (infinite PSNR).

Outputs are CHW float tensors in [-1, 1], the range of the generator's tanh output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from pix2pix_lit.data.augment import PairAugment
from pix2pix_lit.errors import ConfigError

PREPROCESS_MODES: tuple[str, ...] = (
    "resize_and_crop",
    "scale_width_and_crop",
    "crop",
    "scale_width",
    "none",
)
# Modes whose training crops all have one size, so any batch size works.
FIXED_SIZE_MODES: tuple[str, ...] = ("resize_and_crop", "scale_width_and_crop", "crop")

Size = tuple[int, int]  # (width, height), Pillow's order


def nearest_multiple(side: int, multiple: int) -> int:
    """``side`` rounded to the nearest multiple of ``multiple`` (at least one multiple)."""
    return max(multiple, round(side / multiple) * multiple)


def resize(image: np.ndarray, size: Size) -> np.ndarray:
    """``image`` (H x W x C uint8) resized to ``size`` = (width, height) with Pillow's
    bicubic filter (antialiased when shrinking); unchanged when already that size."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    if image.shape[2] == 1:
        return np.asarray(Image.fromarray(image[..., 0]).resize(size, Image.BICUBIC))[..., None]
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))


def to_signed_tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x C uint8 -> C x H x W float32 in [-1, 1] (x / 127.5 - 1)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
    return tensor.div_(127.5).sub_(1.0)


@dataclass(frozen=True)
class Preprocess:
    """One ``data.preprocess`` mode with its sizes (see the module docstring)."""

    mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    multiple: int = 1

    def __post_init__(self) -> None:
        if self.mode not in PREPROCESS_MODES:
            raise ConfigError(
                f"data.preprocess={self.mode!r} is not valid; use one of "
                f"{', '.join(PREPROCESS_MODES)}"
            )
        for key in ("load_size", "crop_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"data.{key}={value!r} must be a positive integer")
        if self.mode in ("resize_and_crop", "scale_width_and_crop") and (
            self.load_size < self.crop_size
        ):
            raise ConfigError(
                f"data.load_size={self.load_size} is smaller than data.crop_size="
                f"{self.crop_size}; load_size must be >= crop_size (e.g. 286 and 256)"
            )

    @property
    def fixed_size(self) -> bool:
        return self.mode in FIXED_SIZE_MODES

    def resized(self, size: Size, train: bool) -> Size:
        """The size an image of ``size`` is resized to before any crop."""
        width, height = size
        if self.mode == "resize_and_crop":
            side = self.load_size if train else self.crop_size
            return side, side
        if self.mode in ("scale_width", "scale_width_and_crop"):
            shrink_to_crop = self.mode == "scale_width_and_crop" and not train
            target = self.crop_size if shrink_to_crop else self.load_size
            scaled = (target, max(target * height // width, self.crop_size))
            if self.mode == "scale_width":
                return tuple(nearest_multiple(s, self.multiple) for s in scaled)
            return scaled
        if self.mode == "none":
            return nearest_multiple(width, self.multiple), nearest_multiple(height, self.multiple)
        return size  # crop

    def output_size(self, size: Size, train: bool) -> Size:
        """The size of the sample made from an image of ``size``."""
        if self.mode == "resize_and_crop" and not train:
            return self.crop_size, self.crop_size
        if self.fixed_size:
            return self.crop_size, self.crop_size
        return self.resized(size, train)

    def too_small(self, size: Size) -> bool:
        """Whether an image of ``size`` cannot give a crop (only ``crop`` keeps native sizes)."""
        return self.mode == "crop" and min(size) < self.crop_size


@dataclass(frozen=True)
class PairTransform:
    """``preprocess`` applied to both images of a pair with a single random draw.

    B is brought to A's size first (pairs of the ``separate`` layout may differ), so the crop
    and flip drawn for A fit B and the pair stays pixel-aligned. A training draw comes from
    ``seed`` (the training sampler hands one out per sample, for exact resumes) or, without
    one, from torch's global generator, which the DataLoader seeds per worker.
    """

    preprocess: Preprocess
    train: bool
    #: ``data.augment``: albumentations transforms run after the preprocessing in training
    augment: PairAugment | None = None

    def __call__(
        self, a: np.ndarray, b: np.ndarray, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform HWC uint8 images ``a`` and ``b`` into CHW float tensors in [-1, 1]."""
        native = (a.shape[1], a.shape[0])
        b = resize(b, native)
        size = self.preprocess.resized(native, self.train)
        a, b = resize(a, size), resize(b, size)
        if self.train and seed is None:
            seed = int(torch.randint(0, 2**63 - 1, ()).item())
        crop, flip = self._draw(size, seed)
        if crop is not None:
            left, top, side = crop
            a, b = a[top : top + side, left : left + side], b[top : top + side, left : left + side]
        if flip:
            a, b = a[:, ::-1], b[:, ::-1]
        if self.augment is not None and self.train:
            # a draw of its own, independent of the crop and flip drawn from the same seed
            a, b = self.augment(a, b, seed + 1)
        return to_signed_tensor(a), to_signed_tensor(b)

    def _draw(self, size: Size, seed: int | None) -> tuple[tuple[int, int, int] | None, bool]:
        """The crop window ``(left, top, side)`` (None: no crop) and whether to mirror."""
        preprocess = self.preprocess
        cropping = preprocess.fixed_size and not (
            preprocess.mode == "resize_and_crop" and not self.train
        )
        side = preprocess.crop_size
        if not self.train:
            if not cropping:
                return None, False
            return ((size[0] - side) // 2, (size[1] - side) // 2, side), False
        rng = np.random.default_rng(seed)
        crop = None
        if cropping:
            crop = (
                int(rng.integers(size[0] - side + 1)),
                int(rng.integers(size[1] - side + 1)),
                side,
            )
        return crop, preprocess.flip and bool(rng.random() < 0.5)


def train_transform(
    load_size: int, crop_size: int, flip: bool, mode: str = "resize_and_crop", multiple: int = 1
) -> PairTransform:
    """The training transform of ``mode`` (default: the pix2pix jitter, resize, crop, flip)."""
    return PairTransform(Preprocess(mode, load_size, crop_size, flip, multiple), train=True)


def eval_transform(
    crop_size: int, mode: str = "resize_and_crop", load_size: int | None = None, multiple: int = 1
) -> PairTransform:
    """The deterministic validation/test transform of ``mode`` (default: resize to
    ``crop_size``²)."""
    preprocess = Preprocess(mode, load_size or crop_size, crop_size, False, multiple)
    return PairTransform(preprocess, train=False)
