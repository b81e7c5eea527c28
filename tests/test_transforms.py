"""Reading one A|B image into a pair: train/eval transforms, direction, any image mode to RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import gradient_pair, save_ab
from pix2pix_lit.data import PairedImageDataset
from pix2pix_lit.data.io import read_rgb
from pix2pix_lit.data.transforms import eval_transform, train_transform

# One uint8 level in [-1, 1] units: bicubic resizing may round A and 255 - A differently.
ONE_LEVEL = 2 / 255 + 1e-6


def test_train_transform_crops_and_flips_a_and_b_identically(tmp_path: Path) -> None:
    path = save_ab(tmp_path / "pair.png", gradient_pair(64))
    dataset = PairedImageDataset([path], train_transform(load_size=80, crop_size=64, flip=True))
    flips, corners = [], set()
    torch.manual_seed(0)
    for _ in range(40):
        sample = dataset[0]
        a, b = sample["A"], sample["B"]
        assert a.shape == b.shape == (3, 64, 64)
        # B = 255 - A on disk, i.e. B = -A in [-1, 1]: it must still hold pixel by pixel.
        assert torch.allclose(b, -a, atol=ONE_LEVEL)
        red = a[0]
        flips.append(bool(red[:, -1].mean() < red[:, 0].mean()))
        corners.add((round(red[0, 0].item(), 2), round(a[1, 0, 0].item(), 2)))
    assert any(flips) and not all(flips), "horizontal flips should happen both ways"
    assert len(corners) > 5, "random crops should start at varying offsets"


def test_eval_transform_is_deterministic_resize(tmp_path: Path) -> None:
    path = save_ab(tmp_path / "pair.png", gradient_pair(64))
    dataset = PairedImageDataset([path], eval_transform(crop_size=32))
    first, second = dataset[0], dataset[0]
    assert first["A"].shape == (3, 32, 32)
    assert torch.equal(first["A"], second["A"]) and torch.equal(first["B"], second["B"])
    assert first["A"][0, :, 0].mean() < first["A"][0, :, -1].mean(), "eval must not flip"


def test_direction_btoa_swaps_the_halves(tmp_path: Path) -> None:
    left = np.full((16, 16, 3), (255, 0, 0), dtype=np.uint8)
    right = np.full((16, 16, 3), (0, 0, 255), dtype=np.uint8)
    path = save_ab(tmp_path / "pair.png", np.concatenate([left, right], axis=1))
    red, blue = torch.tensor([1.0, -1.0, -1.0]), torch.tensor([-1.0, -1.0, 1.0])
    for direction, (input_colour, target_colour) in {
        "AtoB": (red, blue),
        "BtoA": (blue, red),
    }.items():
        sample = PairedImageDataset([path], eval_transform(16), direction)[0]
        assert torch.allclose(sample["A"][:, 0, 0], input_colour)
        assert torch.allclose(sample["B"][:, 0, 0], target_colour)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16"])
def test_read_rgb_converts_any_mode_to_8bit_rgb(tmp_path: Path, mode: str) -> None:
    if mode == "I;16":
        image = Image.fromarray(np.full((8, 16), 65535, np.uint16))
    else:
        image = Image.fromarray(gradient_pair(8)).convert(mode)
    path = tmp_path / ("image.tif" if mode == "CMYK" else "image.png")
    image.save(path)
    array = read_rgb(path)
    assert array.dtype == np.uint8 and array.shape == (8, 16, 3)
    if mode == "I;16":
        assert (array == 255).all(), "16-bit white must map to 8-bit white, not be clipped"
