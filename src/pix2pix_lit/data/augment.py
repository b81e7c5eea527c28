"""Extra training augmentations from albumentations, drawn once per pair.

The pix2pix preprocessing (resize, crop, flip: :mod:`pix2pix_lit.data.transforms`) follows the
reference implementation and needs no library. Anything beyond it — rotations, elastic
distortions, photometric jitter — comes from albumentations through ``data.augment``, a list
of its transforms that runs after the preprocessing on A and B with one random draw, so
geometric transforms keep the pair aligned. Photometric transforms change both images too:
keep them out of pairs whose B is a label map.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from pix2pix_lit.config import NEEDS_ALBUMENTATIONS
from pix2pix_lit.errors import ConfigError

# albumentations' name of the pair's second image; A is the primary "image" target
_PAIR_TARGET = "image_b"


class PairAugment:
    """An albumentations pipeline applied to both images of a pair with a single draw.

    The pipeline is reseeded for every pair from the sample's seed: albumentations draws from
    private generators that ``seed_everything`` does not touch and that forked loader workers
    would inherit identically, and the seed makes a resumed epoch draw what the interrupted
    one drew.
    """

    def __init__(self, transforms: Sequence[Any]) -> None:
        try:
            import albumentations as alb
        except ImportError:
            raise ConfigError(NEEDS_ALBUMENTATIONS) from None

        for i, transform in enumerate(transforms):
            if not isinstance(transform, alb.BasicTransform | alb.BaseCompose):
                raise ConfigError(
                    f"data.augment[{i}]={transform!r} is not an albumentations transform; give "
                    "nodes such as {_target_: albumentations.Rotate, limit: 10}"
                )
        self.pipeline = alb.Compose(list(transforms), additional_targets={_PAIR_TARGET: "image"})

    def __call__(self, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Augment HWC uint8 images ``a`` and ``b`` with the draw of ``seed``."""
        self.pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))
        out = self.pipeline(
            image=np.ascontiguousarray(a), **{_PAIR_TARGET: np.ascontiguousarray(b)}
        )
        return out["image"], out[_PAIR_TARGET]
