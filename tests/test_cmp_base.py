"""The raw CMP Facade base set (mixed non-square photos beside indexed label PNGs) trains as it
is in the separate layout, and, combined into non-square A|B images, in resize_and_crop and
at its native sizes (preprocess=none). Cut to a couple of steps on small images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import TINY_UNET, compose_run, read_metrics
from pix2pix_lit.data import PairedImageDataModule
from pix2pix_lit.training.run import train

CMP_BASE = Path(__file__).resolve().parents[1].parent / "shared/data/cmp_facade_db/base"
SHORT = [
    "discriminator.ndf=8",
    "trainer=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "data.num_workers=0",
    *TINY_UNET,
]
pytestmark = pytest.mark.filterwarnings("ignore:data.root=.* has no .*val")


@pytest.fixture(scope="module")
def cmp_base() -> Path:
    if not (CMP_BASE / "cmp_b0001.jpg").is_file():
        pytest.skip(f"raw CMP base set not found at {CMP_BASE} (see README: ../shared/data)")
    return CMP_BASE


def _train(tmp_path: Path, *overrides: str) -> list[dict[str, str]]:
    cfg = compose_run([*SHORT, f"paths.log_dir={tmp_path / 'logs'}", *overrides], tmp_path / "run")
    train(cfg)
    return read_metrics(tmp_path / "run")


def test_raw_base_set_is_paired_by_name_and_split_by_fraction(cmp_base: Path) -> None:
    module = PairedImageDataModule(
        cmp_base, layout="separate", a_dir=".", b_dir=".", a_glob="*.jpg", b_glob="*.png",
        direction="BtoA", test_fraction=0.1, num_workers=0, verify_images=False,
    )  # fmt: skip
    with pytest.warns(UserWarning, match="validating on 'test/'"):
        module.setup(None)
    assert (len(module.train_set), len(module.test_set)) == (340, 38)
    sample = module.test_set[0]
    # input = the indexed label map read as its palette colours, target = the photo
    assert sample["A_path"].endswith(".png") and sample["A"].shape == (3, 256, 256)
    labels = {tuple(c) for c in sample["A"].flatten(1).T.mul(127.5).add(127.5).round().tolist()}
    assert len(labels) > 3  # colours, not the handful of palette indices as grey levels


def test_raw_base_set_trains_in_separate_layout(tmp_path: Path, cmp_base: Path) -> None:
    rows = _train(
        tmp_path,
        "data=cmp_base",
        f"data.root={cmp_base}",
        "data.load_size=72",
        "data.crop_size=64",
        "data.verify_images=false",
        f"data.scan_cache={tmp_path / 'cache'}",
    )
    assert any(row.get("val/L1") for row in rows)


@pytest.fixture(scope="module")
def combined_cmp(tmp_path_factory: pytest.TempPathFactory, cmp_base: Path) -> Path:
    """The 6 smallest base pairs as non-square A|B images: photo | labels, 4 train, 2 test."""
    photos = sorted(cmp_base.glob("*.jpg"), key=lambda p: np.prod(Image.open(p).size))[:6]
    root = tmp_path_factory.mktemp("cmp_combined")
    for index, photo in enumerate(photos):
        a = np.asarray(Image.open(photo).convert("RGB"))
        b = np.asarray(Image.open(photo.with_suffix(".png")).convert("RGB"))
        assert a.shape == b.shape and a.shape[0] != a.shape[1]
        split = "train" if index < 4 else "test"
        (root / split).mkdir(exist_ok=True)
        Image.fromarray(np.concatenate([a, b], axis=1)).save(root / split / f"{photo.stem}.png")
    return root


@pytest.mark.parametrize(
    "preprocess",
    [
        ["data.preprocess=resize_and_crop", "data.load_size=72", "data.crop_size=64"],
        # native sizes (about 250 x 300), each side rounded to the U-Net's multiple of 64
        ["data.preprocess=none", "data.batch_size=1"],
    ],
    ids=["resize_and_crop", "none"],
)
def test_combined_non_square_base_pairs_train(
    tmp_path: Path, combined_cmp: Path, preprocess: list[str]
) -> None:
    rows = _train(
        tmp_path, "data=folder", f"data.root={combined_cmp}", "data.direction=BtoA", *preprocess
    )
    assert any(row.get("val/L1") for row in rows)
