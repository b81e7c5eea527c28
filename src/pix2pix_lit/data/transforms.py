"""Albumentations pipelines that transform an aligned (A, B) pair with one random draw.

Every pipeline treats B as an additional *image* target, so a random crop or flip sampled for A
is applied to B as well and the pair stays pixel-aligned. Outputs are CHW float tensors in
[-1, 1], the range of the generator's tanh output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import albumentations as alb
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from pix2pix_lit.errors import ConfigError

# Albumentations name of the second image of a pair; A is passed as the primary "image".
_PAIR_TARGET = "image_b"


@dataclass(frozen=True)
class PairTransform:
    """An albumentations pipeline applied to both images of a pair with a single draw.

    ``stochastic`` pipelines are reseeded before every pair: albumentations 2.x draws from
    private generators that ``seed_everything`` does not touch and that forked DataLoader
    workers would inherit identically. The seed comes with the sample (see
    :class:`~pix2pix_lit.data.sampling.ResumableRandomSampler`) or, without one, from torch's
    global generator, which the DataLoader seeds per worker.
    """

    pipeline: alb.Compose
    stochastic: bool

    def __call__(
        self, a: np.ndarray, b: np.ndarray, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform HWC uint8 images ``a`` and ``b`` into CHW float tensors in [-1, 1].

        ``seed`` fixes the random draw (the training sampler supplies one per sample);
        without it, one is drawn from torch's global generator.
        """
        if self.stochastic:
            if seed is None:
                seed = int(torch.randint(0, 2**63 - 1, ()).item())
            self.pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))
        out = self.pipeline(image=a, **{_PAIR_TARGET: b})
        return out["image"], out[_PAIR_TARGET]


def _pair_pipeline(steps: list[alb.BasicTransform]) -> alb.Compose:
    to_signed_tensor = [alb.Normalize(mean=0.5, std=0.5, max_pixel_value=255.0), ToTensorV2()]
    return alb.Compose(steps + to_signed_tensor, additional_targets={_PAIR_TARGET: "image"})


def _resize(size: int) -> alb.Resize:
    # Bicubic, like the reference implementation's PIL resize.
    return alb.Resize(size, size, interpolation=cv2.INTER_CUBIC)


def train_transform(load_size: int, crop_size: int, flip: bool) -> PairTransform:
    """The pix2pix training augmentation: resize to ``load_size``, random crop, random flip."""
    if load_size < crop_size:
        raise ConfigError(
            f"data.load_size={load_size} is smaller than data.crop_size={crop_size}; "
            "load_size must be >= crop_size (e.g. 286 and 256)"
        )
    steps = [_resize(load_size), alb.RandomCrop(crop_size, crop_size)]
    if flip:
        steps.append(alb.HorizontalFlip(p=0.5))
    return PairTransform(_pair_pipeline(steps), stochastic=True)


def eval_transform(crop_size: int) -> PairTransform:
    """The deterministic validation/test transform: resize straight to ``crop_size``."""
    return PairTransform(_pair_pipeline([_resize(crop_size)]), stochastic=False)
