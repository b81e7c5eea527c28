"""Paired-data errors a user can act on: missing roots, empty splits, bad or truncated images,
bad settings."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import save_ab, small_paired_module
from pix2pix_lit.errors import ConfigError, DataError


def test_missing_root_without_url_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    module = small_paired_module(missing)
    pattern = rf"data.root={re.escape(str(missing))} does not exist \(no 'train/' folder\) and no data.url"
    with pytest.raises(DataError, match=pattern):
        module.prepare_data()
    with pytest.raises(DataError, match=pattern):
        module.setup("fit")


def test_missing_root_with_download_disabled_says_so(tmp_path: Path) -> None:
    module = small_paired_module(tmp_path / "nowhere", url="file:///x.tar.gz", download=False)
    with pytest.raises(DataError, match="data.download=false"):
        module.prepare_data()


def test_relative_root_is_relative_to_cwd(
    synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(synthetic_root.parent)
    assert small_paired_module(Path(synthetic_root.name)).root == synthetic_root


def test_empty_split_names_folder_and_counts_ignored_files(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("x")
    (tmp_path / "train" / "._0001.png").write_bytes(b"macOS resource fork")
    with pytest.raises(
        DataError,
        match=rf"{re.escape(str(tmp_path / 'train'))} contains no images; put A\|B images "
        r"there .*\(2 hidden or non-image files ignored\)",
    ):
        small_paired_module(tmp_path).setup("fit")


def test_odd_widths_zero_byte_and_broken_files_are_all_listed(tmp_path: Path) -> None:
    train = tmp_path / "train"
    save_ab(train / "good.png", np.zeros((8, 16, 3), np.uint8))
    save_ab(train / "wide.png", np.zeros((8, 40, 3), np.uint8))  # any aspect is fine
    for index in range(11):
        save_ab(train / f"bad{index:02d}.png", np.zeros((10, 11 + 2 * index, 3), np.uint8))
    (train / "a_broken.jpg").write_bytes(b"not an image")
    (train / "a_empty.png").write_bytes(b"")
    with pytest.raises(DataError) as caught:
        small_paired_module(tmp_path, preprocess="none").setup("fit")
    message = str(caught.value)
    assert message.startswith("13 file(s) in ") and "cannot be used" in message
    assert "bad00.png (11x10: an A|B image needs an even width" in message
    assert "a_broken.jpg (unreadable" in message and "a_empty.png (unreadable" in message
    assert "and 3 more" in message and "good.png" not in message and "wide.png" not in message
    assert "\n" not in message


def test_images_smaller_than_the_crop_are_listed(tmp_path: Path) -> None:
    save_ab(tmp_path / "train" / "small.png", np.zeros((20, 80, 3), np.uint8))
    save_ab(tmp_path / "train" / "big.png", np.zeros((40, 80, 3), np.uint8))
    with pytest.raises(
        DataError, match=r"1 file.*small.png \(40x20, smaller than data.crop_size=32\)"
    ):
        small_paired_module(tmp_path, preprocess="crop").setup("fit")


def test_truncated_images_are_found_by_the_scan_not_mid_epoch(tmp_path: Path) -> None:
    train = tmp_path / "train"
    train.mkdir(parents=True)
    noise = np.random.default_rng(0).integers(0, 256, (3, 64, 128, 3), dtype=np.uint8)
    for index in range(3):
        Image.fromarray(noise[index]).save(train / f"{index}.jpg")
    whole = (train / "1.jpg").read_bytes()
    (train / "1.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"1 file\(s\).*1.jpg \(unreadable: (?i:.*truncated)"):
        small_paired_module(tmp_path).setup("fit")
    # header-only scanning (verify_images=false) lets it through to fail when read
    module = small_paired_module(tmp_path, verify_images=False, val_fallback=1)
    with pytest.warns(UserWarning):
        module.setup("fit")


def test_missing_fallback_split_names_the_key(no_val_root: Path) -> None:
    module = small_paired_module(no_val_root, val_fallback="holdout")
    with pytest.raises(
        DataError,
        match=r"no 'holdout/' folder \(found: test/, train/\).*data.val_fallback=N "
        r"\(e.g. 20\) to hold N of the 'train/' images out",
    ):
        module.setup("fit")


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"direction": "CtoD"}, r"data.direction='CtoD'.*AtoB, BtoA"),
        ({"load_size": 16, "crop_size": 32}, r"data.load_size=16.*data.crop_size=32"),
        ({"val_fallback": True}, r"data.val_fallback=True"),
        ({"val_fallback": 0}, r"data.val_fallback=0"),
        ({"batch_size": 0}, r"data.batch_size=0"),
        ({"batch_size": 2.5}, r"data.batch_size=2.5 must be a positive integer"),
        ({"layout": "stacked"}, r"data.layout='stacked' is not valid; use one of combined"),
        ({"preprocess": "fit"}, r"data.preprocess='fit' is not valid"),
        ({"unmatched": "ignore"}, r"data.unmatched='ignore' is not valid; use one of error"),
        ({"test_fraction": 1.5}, r"data.test_fraction=1.5 must be a number between 0 and 1"),
        ({"test_fraction": 0.1, "test_list": "t.txt"}, r"test_fraction and data.test_list both"),
        ({"in_channels": 4}, r"data.in_channels=4 is not valid; use 1 \(grayscale\) or 3"),
        ({"size_multiple": 0}, r"data.size_multiple=0 must be a positive integer or null"),
    ],
)
def test_bad_settings_raise_config_error(
    synthetic_root: Path, overrides: dict[str, object], pattern: str
) -> None:
    with pytest.raises(ConfigError, match=pattern):
        small_paired_module(synthetic_root, **overrides)


def test_holding_out_every_train_image_is_rejected(no_val_root: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.val_fallback=6 would hold out all 6"):
        small_paired_module(no_val_root, val_fallback=6).setup("fit")
