"""Reading one pair into tensors: the reference's preprocess modes, direction, channels, and any
image mode (palette, 16-bit, RGBA, CMYK, grayscale JPEG) read the way the docs say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import gradient_pair, save_ab
from pix2pix_lit.data import PairedImageDataset
from pix2pix_lit.data.io import read_image, read_rgb
from pix2pix_lit.data.layouts import Pair
from pix2pix_lit.data.transforms import (
    PREPROCESS_MODES,
    Preprocess,
    eval_transform,
    resize,
    train_transform,
)
from pix2pix_lit.errors import ConfigError

# One uint8 level in [-1, 1] units: bicubic resizing may round A and 255 - A differently.
ONE_LEVEL = 2 / 255 + 1e-6


def _dataset(path: Path, transform, direction: str = "AtoB") -> PairedImageDataset:
    return PairedImageDataset([Pair(path.name, path)], transform, direction)


def test_train_transform_crops_and_flips_a_and_b_identically(tmp_path: Path) -> None:
    path = save_ab(tmp_path / "pair.png", gradient_pair(64))
    dataset = _dataset(path, train_transform(load_size=80, crop_size=64, flip=True))
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


def test_seeded_draws_repeat(tmp_path: Path) -> None:
    path = save_ab(tmp_path / "pair.png", gradient_pair(64))
    dataset = _dataset(path, train_transform(load_size=80, crop_size=64, flip=True))
    assert torch.equal(dataset[(0, 5)]["A"], dataset[(0, 5)]["A"])
    assert not all(torch.equal(dataset[(0, 5)]["A"], dataset[(0, s)]["A"]) for s in range(6, 12))


def test_eval_transform_is_deterministic_resize(tmp_path: Path) -> None:
    path = save_ab(tmp_path / "pair.png", gradient_pair(64))
    dataset = _dataset(path, eval_transform(crop_size=32))
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
        sample = _dataset(path, eval_transform(16), direction)[0]
        assert torch.allclose(sample["A"][:, 0, 0], input_colour)
        assert torch.allclose(sample["B"][:, 0, 0], target_colour)


# -- preprocess modes -------------------------------------------------------------------------

# A 2:1 landscape image of 100x50 under load_size=80, crop_size=32, multiple=16, and the
# (width, height) the reference's rules give in training and evaluation.
EXPECTED_SIZES = {
    "resize_and_crop": ((32, 32), (32, 32)),
    "scale_width_and_crop": ((32, 32), (32, 32)),
    "crop": ((32, 32), (32, 32)),
    # width 80, height max(80 * 50 // 100, 32) = 40, each to the nearest multiple of 16 with
    # Python's round as in the reference (half to even: 40 / 16 = 2.5 -> 2)
    "scale_width": ((80, 32), (80, 32)),
    # 100x50 -> nearest multiples of 16: 96x48
    "none": ((96, 48), (96, 48)),
}


@pytest.mark.parametrize("mode", PREPROCESS_MODES)
def test_each_mode_gives_the_reference_size(mode: str) -> None:
    preprocess = Preprocess(mode, load_size=80, crop_size=32, flip=True, multiple=16)
    image = np.random.default_rng(0).integers(0, 256, (50, 100, 3), dtype=np.uint8)
    for train, transform in ((True, train_transform), (False, eval_transform)):
        if train:
            pair = transform(80, 32, True, mode=mode, multiple=16)
        else:
            pair = transform(32, mode=mode, load_size=80, multiple=16)
        a, b = pair(image, image, seed=3)
        expected = EXPECTED_SIZES[mode][not train]
        assert (a.shape[2], a.shape[1]) == expected == preprocess.output_size((100, 50), train)
        assert torch.equal(a, b)


def test_crop_mode_keeps_native_pixels_and_eval_takes_the_centre() -> None:
    image = np.arange(40 * 60 * 3, dtype=np.uint32).reshape(40, 60, 3).astype(np.uint8)
    a, _ = eval_transform(20, mode="crop")(image, image)
    centre = image[10:30, 20:40]
    assert torch.equal(a, torch.from_numpy(centre.transpose(2, 0, 1)).float() / 127.5 - 1)


def test_resize_is_pillows_antialiased_bicubic() -> None:
    """Shrinking must match Pillow (the reference) exactly; OpenCV's INTER_CUBIC would not."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    ours = resize(image, (143, 143))
    pillow = np.asarray(Image.fromarray(image).resize((143, 143), Image.BICUBIC))
    assert np.array_equal(ours, pillow)
    # the antialiasing is real: a non-antialiased bicubic keeps far more of the noise
    import cv2

    plain = cv2.resize(image, (143, 143), interpolation=cv2.INTER_CUBIC)
    assert plain.std() > ours.std() + 10


def test_b_is_brought_to_a_size_before_the_shared_crop() -> None:
    a = np.zeros((40, 40, 3), np.uint8)
    b = np.full((20, 20, 3), 255, np.uint8)
    out_a, out_b = train_transform(40, 32, True, mode="crop")(a, b, seed=1)
    assert out_a.shape == out_b.shape == (3, 32, 32)
    assert torch.all(out_b == 1.0)


@pytest.mark.parametrize(
    ("settings", "pattern"),
    [
        (("zoom", 286, 256), r"data.preprocess='zoom' is not valid; use one of resize_and_crop"),
        (("resize_and_crop", 200, 256), r"data.load_size=200 is smaller than data.crop_size"),
        (("crop", 286, 0), r"data.crop_size=0 must be a positive integer"),
    ],
)
def test_bad_preprocess_settings_name_the_key(settings: tuple, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        Preprocess(*settings)


# -- image kinds ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK"])
def test_read_rgb_converts_any_mode_to_8bit_rgb(tmp_path: Path, mode: str) -> None:
    image = Image.fromarray(gradient_pair(8)).convert(mode)
    path = tmp_path / ("image.tif" if mode == "CMYK" else "image.png")
    image.save(path)
    array = read_rgb(path)
    assert array.dtype == np.uint8 and array.shape == (8, 16, 3)


def test_palette_png_reads_as_its_palette_colours(tmp_path: Path) -> None:
    indices = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette([0, 0, 170, 255, 0, 0, 0, 255, 255] + [0] * 759)
    image.save(tmp_path / "labels.png")
    colours = read_rgb(tmp_path / "labels.png")
    assert colours[0, 0].tolist() == [0, 0, 170] and colours[1, 0].tolist() == [0, 255, 255]
    assert colours[0, 1].tolist() == colours[1, 1].tolist() == [255, 0, 0]


def test_rgba_drops_alpha_like_the_reference(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red, fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert read_rgb(tmp_path / "t.png")[0, 0].tolist() == [200, 0, 0]


def test_cmyk_and_grayscale_jpegs_and_uppercase_extensions(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.JPG")
    Image.new("L", (8, 8), 77).save(tmp_path / "gray.JPEG")
    red = read_rgb(tmp_path / "cmyk.JPG")[4, 4]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    assert np.abs(read_rgb(tmp_path / "gray.JPEG").astype(int) - 77).max() <= 1


def _save_16bit(path: Path, values: np.ndarray, mode: str) -> Path:
    if mode == "I":
        Image.fromarray(values.astype(np.int32), "I").save(path)
    else:
        Image.fromarray(values.astype(np.uint16)).convert(mode).save(path)
    return path


# 16-bit levels, the 8-bit level rescaling gives (v / 257) and what clipping would give:
# they differ for all three, so a clipping reader fails here.
SIXTEEN_BIT = [(65535, 255, 255), (32896, 128, 255), (257, 1, 255), (200, 1, 200)]


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_16bit_images_are_rescaled_not_clipped(tmp_path: Path, mode: str) -> None:
    values = np.array([[v for v, _, _ in SIXTEEN_BIT]])
    # Pillow writes 32-bit "I" images as TIFF only; older Pillows read 16-bit PNGs as "I".
    path = _save_16bit(tmp_path / ("deep.tif" if mode == "I" else "deep.png"), values, mode)
    with Image.open(path) as opened:
        assert opened.mode in ("I;16", "I", "I;16B")  # still wide when read back
    for channels in (1, 3):
        array = read_image(path, channels)
        assert array.shape == (1, 4, channels)
        assert array[0, :, 0].tolist() == [rescaled for _, rescaled, _ in SIXTEEN_BIT]


@pytest.mark.parametrize("preprocess", PREPROCESS_MODES)
def test_16bit_mid_grey_stays_mid_grey_through_every_preprocess_mode(
    tmp_path: Path, preprocess: str
) -> None:
    """A flat 16-bit image of 32896 (= 128 * 257) must come out at 128/127.5 - 1 ~ 0.004 in
    every mode; clipping would give 1.0."""
    path = _save_16bit(tmp_path / "flat.png", np.full((40, 80), 32896), "I;16")
    dataset = _dataset(path, train_transform(36, 32, True, mode=preprocess))
    sample = dataset[(0, 0)]
    expected = 128 / 127.5 - 1
    assert torch.allclose(sample["A"], torch.full_like(sample["A"], expected), atol=1e-6)
    assert torch.allclose(sample["B"], torch.full_like(sample["B"], expected), atol=1e-6)


def test_grayscale_input_and_colour_target_channels(tmp_path: Path) -> None:
    path = save_ab(tmp_path / "pair.png", gradient_pair(16))
    dataset = PairedImageDataset([Pair("pair", path)], eval_transform(16), "AtoB", channels=(1, 3))
    sample = dataset[0]
    assert sample["A"].shape == (1, 16, 16) and sample["B"].shape == (3, 16, 16)
    luma = Image.fromarray(gradient_pair(16)[:, :16]).convert("L")
    expected = torch.from_numpy(np.asarray(luma)).float() / 127.5 - 1
    assert torch.allclose(sample["A"][0], expected)
