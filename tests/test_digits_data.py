"""The DTN's digit sets: rendered source digits, UCI target digits, caching, the S+T module."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from pix2pix_lit.data import DigitTransferDataModule, SyntheticDigitsDataModule, UCIDigitsDataModule
from pix2pix_lit.data.digit_rendering import available_fonts, render_digits
from pix2pix_lit.data.digit_transfer import AlignedDigits
from pix2pix_lit.data.digits import DigitsDataset, set_channels
from pix2pix_lit.errors import ConfigError, DataError

SMALL = {"train": 20, "test": 10}


def synthetic(root: Path, **kwargs) -> SyntheticDigitsDataModule:
    settings = {"num_images": SMALL, "image_size": 16, "batch_size": 5, "num_workers": 0}
    return SyntheticDigitsDataModule(root, **{**settings, **kwargs})


def uci(root: Path, **kwargs) -> UCIDigitsDataModule:
    return UCIDigitsDataModule(
        root, **{"image_size": 16, "batch_size": 5, "num_workers": 0, **kwargs}
    )


def test_rendered_digits_are_seeded_balanced_and_labelled() -> None:
    images, labels = render_digits(30, 16, seed=1)
    again, same_labels = render_digits(30, 16, seed=1)
    other, _ = render_digits(30, 16, seed=2)
    assert images.shape == (30, 16, 16, 3) and images.dtype == np.uint8
    assert np.array_equal(images, again) and np.array_equal(labels, same_labels)
    assert not np.array_equal(images, other)
    assert np.bincount(labels, minlength=10).tolist() == [3] * 10
    # Pillow's built-in font is always there; DejaVu where the OS ships it
    assert available_fonts()[-1] == "pillow-builtin"
    # every image shows ink on a background (a quarter of the range apart in luma, less blur)
    luma = images.reshape(30, -1, 3) @ np.array([0.299, 0.587, 0.114])
    assert (luma.max(1) - luma.min(1) > 30).all()


def test_synthetic_digits_are_generated_once_and_cached(tmp_path: Path) -> None:
    module = synthetic(tmp_path / "s")
    module.prepare_data()
    module.setup()
    assert len(module.train_set) == 20 and len(module.test_set) == 10
    sample = module.train_set[3]
    assert sample["image"].shape == (3, 16, 16) and 0 <= sample["label"] <= 9
    assert sample["image"].min() >= -1 and sample["image"].max() <= 1
    # a second module (another job, a later run) loads the cache and renders nothing
    with mock.patch("pix2pix_lit.data.digits.render_digits", side_effect=AssertionError):
        cached = synthetic(tmp_path / "s")
        cached.prepare_data()
        cached.setup()
    assert torch.equal(cached.train_set.images, module.train_set.images)
    # a cache made with other settings is refused, not silently reused
    with pytest.raises(DataError, match=r"data.root=.*holds synthetic_digits generated with"):
        synthetic(tmp_path / "s", seed=1).prepare_data()


def test_grey_channels_and_bad_settings(tmp_path: Path) -> None:
    grey = synthetic(tmp_path / "s", channels=1)
    grey.prepare_data()
    grey.setup("fit")
    assert grey.train_set[0]["image"].shape == (1, 16, 16)
    rgb = np.array([[[[255]], [[0]], [[0]]]], dtype=np.uint8)  # one red pixel
    assert set_channels(rgb, 1).item() == 76  # 0.299 * 255
    assert set_channels(set_channels(rgb, 1), 3).shape == (1, 3, 1, 1)
    with pytest.raises(ConfigError, match="data.channels=2"):
        synthetic(tmp_path / "x", channels=2)
    with pytest.raises(ConfigError, match="data.num_images="):
        synthetic(tmp_path / "x", num_images={"train": 5})
    with pytest.raises(ConfigError, match="data.test_fraction=1"):
        uci(tmp_path / "x", test_fraction=1)


def test_uci_digits_split_seeded_and_upsampled(tmp_path: Path) -> None:
    module = uci(tmp_path / "t")
    module.prepare_data()
    module.setup()
    assert (len(module.train_set), len(module.test_set)) == (1438, 359)
    images = module.train_set.images
    assert images.shape == (1438, 1, 16, 16)
    # ink bright on a dark background, as MNIST: corners are background
    assert images[:, :, 0, 0].float().mean() < 10 and images.float().amax() > 200
    assert np.bincount(module.train_set.labels.numpy(), minlength=10).min() > 100
    other = uci(tmp_path / "t2", seed=1)
    other.prepare_data()
    other.setup("test")
    assert not torch.equal(other.test_set.labels, module.test_set.labels)


def test_transfer_module_serves_source_with_random_target(tmp_path: Path) -> None:
    module = DigitTransferDataModule(
        synthetic(tmp_path / "s"), uci(tmp_path / "t"), batch_size=4, num_workers=0
    )
    module.prepare_data()
    module.setup()
    batch = next(iter(module.train_dataloader()))
    assert batch["A"].shape == (4, 3, 16, 16) and batch["B"].shape == (4, 1, 16, 16)
    assert batch["A_label"].shape == batch["B_label"].shape == (4,)
    # seeded per sample: the same (index, seed) always draws the same target image
    assert torch.equal(module.train_set[(2, 7)]["B"], module.train_set[(2, 7)]["B"])
    assert len(module.train_set) == 20  # an epoch is a pass over the source
    # the sampler's position is saved like the other data modules'
    assert module.state_dict() == {}
    with pytest.raises(
        ConfigError, match=r"data.source.image_size=16 and data.target.image_size=8"
    ):
        DigitTransferDataModule(synthetic(tmp_path / "s"), uci(tmp_path / "t8", image_size=8))


def test_aligned_split_counts_every_image_once() -> None:
    source = DigitsDataset(torch.zeros(3, 1, 8, 8, dtype=torch.uint8), torch.arange(3))
    target = DigitsDataset(torch.zeros(5, 1, 8, 8, dtype=torch.uint8), torch.arange(5))
    aligned = AlignedDigits(source, target)
    assert len(aligned) == 5
    assert [aligned[i]["A_counted"] for i in range(5)] == [True] * 3 + [False] * 2
    assert all(aligned[i]["B_counted"] for i in range(5))
    assert [aligned[i]["A_label"] for i in range(5)] == [0, 1, 2, 0, 1]
