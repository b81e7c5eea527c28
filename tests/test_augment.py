"""data.augment: albumentations transforms on both images of a pair, one seeded draw."""

from __future__ import annotations

from pathlib import Path

import albumentations as alb
import cv2
import numpy as np
import pytest
import torch

from helpers import compose_run
from pix2pix_lit.config import instantiate
from pix2pix_lit.data.augment import PairAugment
from pix2pix_lit.data.transforms import train_transform
from pix2pix_lit.errors import ConfigError


def _pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return a, 255 - a  # B is a pixel-wise function of A: alignment is checkable


def test_a_geometric_augmentation_moves_both_images_alike_and_repeats_with_the_seed() -> None:
    transform = train_transform(32, 32, flip=False)
    augmented = train_transform(32, 32, flip=False)
    # nearest-neighbour sampling and a mirrored border: B = 255 - A must hold after the warp
    rotate = alb.Rotate(
        limit=(30, 30), interpolation=cv2.INTER_NEAREST, border_mode=cv2.BORDER_REFLECT_101, p=1
    )
    object.__setattr__(augmented, "augment", PairAugment([rotate]))
    a, b = _pair()
    plain_a, _ = transform(a, b, seed=3)
    out_a, out_b = augmented(a, b, seed=3)
    assert not torch.equal(out_a, plain_a)  # the rotation ran
    # the same warp on both images: in [-1, 1], B = -A everywhere
    assert torch.allclose(out_a + out_b, torch.zeros(()), atol=1e-6)
    # the preprocessing's own draw is unchanged by the augmentation
    assert torch.equal(plain_a, transform(a, b, seed=3)[0])


def test_the_draw_follows_the_seed() -> None:
    augmented = train_transform(32, 32, flip=False)
    object.__setattr__(augmented, "augment", PairAugment([alb.Rotate(limit=45, p=1.0)]))
    a, b = _pair()
    assert torch.equal(augmented(a, b, seed=5)[0], augmented(a, b, seed=5)[0])
    assert not torch.equal(augmented(a, b, seed=5)[0], augmented(a, b, seed=6)[0])


def test_the_config_key_builds_albumentations_transforms(tmp_path: Path) -> None:
    node = {"_target_": "albumentations.Rotate", "limit": 10, "p": 0.5}
    overrides = ["data=folder", f"data.root={tmp_path}", f"data.augment=[{_flow(node)}]"]
    cfg = compose_run(overrides, tmp_path)
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule.augment, PairAugment)
    assert isinstance(datamodule.augment.pipeline.transforms[0], alb.Rotate)


def test_something_else_than_a_transform_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"data.augment\[0\]"):
        PairAugment([{"limit": 10}])


def _flow(node: dict) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in node.items()) + "}"
