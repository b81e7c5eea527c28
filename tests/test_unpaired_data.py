"""The unpaired data layer: both layouts, random vs serial pairing, independent augmentation,
resumable draws, paired validation on aligned data, configs and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from helpers import compose_run
from pix2pix_lit.data import (
    PairedImageDataset,
    SyntheticUnpairedDataModule,
    UnpairedImageDataModule,
)
from pix2pix_lit.data.transforms import train_transform
from pix2pix_lit.data.unpaired import DomainImages, UnpairedImageDataset
from pix2pix_lit.errors import ConfigError, DataError

# The fixtures have no val split on purpose: validation falls back to test, with a warning.
pytestmark = pytest.mark.filterwarnings("ignore:data.root=.* has no .*val")

SMALL = {"load_size": 36, "crop_size": 32, "batch_size": 2, "num_workers": 0}


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _flat(value: int, height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


@pytest.fixture
def cyclegan_root(tmp_path: Path) -> Path:
    """trainA: 5 flat images (values 0, 10, ..., 40), trainB: 3 (200, 210, 220), sizes vary;
    testA/testB: 2 each. Each image's value identifies it after any crop or flip."""
    root = tmp_path / "cyclegan"
    for i in range(5):
        _save(root / "trainA" / f"a{i}.png", _flat(10 * i, 40 + i, 50))
    for i in range(3):
        _save(root / "trainB" / f"b{i}.png", _flat(200 + 10 * i, 64, 48 + i))
    for split in ("testA", "testB"):
        for i in range(2):
            _save(root / split / f"{i}.png", _flat(100 + i, 32, 32))
    return root


def _value(image: torch.Tensor) -> int:
    """The uint8 value of a flat image in [-1, 1]."""
    return round(float(image.mean() + 1) * 127.5)


def test_cyclegan_layout_batches(cyclegan_root: Path) -> None:
    module = UnpairedImageDataModule(cyclegan_root, **SMALL)
    module.setup("fit")
    assert len(module.train_set) == 5  # max(|A|, |B|)
    batch = next(iter(module.train_dataloader()))
    assert set(batch) == {"A", "B", "A_path", "B_path"}
    assert batch["A"].shape == batch["B"].shape == (2, 3, 32, 32)
    assert batch["A"].min() >= -1 and batch["B"].max() <= 1
    assert all("trainA" in p for p in batch["A_path"]) and all(
        "trainB" in p for p in batch["B_path"]
    )
    # validation falls back to testA/testB, paired by index
    assert len(module.val_set) == 2
    assert module.val_set[1]["A_path"].endswith("testA/1.png")
    assert module.val_set[1]["B_path"].endswith("testB/1.png")


def test_direction_btoa_swaps_the_domains(cyclegan_root: Path) -> None:
    module = UnpairedImageDataModule(cyclegan_root, direction="BtoA", **SMALL)
    module.setup("fit")
    sample = module.train_set[0]
    assert "trainB" in sample["A_path"] and "trainA" in sample["B_path"]
    assert _value(sample["A"]) >= 200


def test_random_pairing_is_not_by_index_unless_serial(cyclegan_root: Path) -> None:
    torch.manual_seed(0)
    module = UnpairedImageDataModule(cyclegan_root, **SMALL)
    module.setup("fit")
    epochs = [[_value(module.train_set[i]["B"]) for i in range(5)] for _ in range(4)]
    by_index = [200 + 10 * (i % 3) for i in range(5)]
    assert any(epoch != by_index for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) > 1  # a new pairing every epoch
    serial = UnpairedImageDataModule(cyclegan_root, serial=True, **SMALL)
    serial.setup("fit")
    for _ in range(2):
        assert [_value(serial.train_set[i]["B"]) for i in range(5)] == by_index
    assert [_value(serial.train_set[i]["A"]) for i in range(5)] == [0, 10, 20, 30, 40]


def test_a_and_b_are_augmented_independently(tmp_path: Path) -> None:
    """The same image in both domains: a shared draw would give identical crops every time."""
    noise = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    _save(path, noise)
    domain = DomainImages([path], lambda i: np.asarray(Image.open(path)))
    dataset = UnpairedImageDataset(domain, domain, train_transform(48, 32, flip=True))
    torch.manual_seed(0)
    samples = [dataset[0] for _ in range(8)]
    assert sum(not torch.equal(s["A"], s["B"]) for s in samples) >= 6
    # ... and each domain's draws vary from sample to sample
    assert len({tuple(s["A"][0, 0, :4].tolist()) for s in samples}) > 1


def test_seeded_samples_repeat_their_draws(cyclegan_root: Path) -> None:
    module = UnpairedImageDataModule(cyclegan_root, **SMALL)
    module.setup("fit")
    first, again = module.train_set[(3, 12345)], module.train_set[(3, 12345)]
    assert first["B_path"] == again["B_path"]
    assert torch.equal(first["A"], again["A"]) and torch.equal(first["B"], again["B"])
    others = {module.train_set[(3, seed)]["B_path"] for seed in range(20)}
    assert len(others) > 1


def test_aligned_layout_serves_halves_unpaired_and_validates_paired(synthetic_root: Path) -> None:
    module = UnpairedImageDataModule(synthetic_root, layout="aligned", **SMALL)
    module.setup("fit")
    assert isinstance(module.train_set, UnpairedImageDataset)
    assert len(module.train_set) == 8
    torch.manual_seed(0)
    samples = [module.train_set[i] for i in range(8)]
    assert any(s["A_path"] != s["B_path"] for s in samples)
    assert all(s["A"].shape == (3, 32, 32) for s in samples)
    # validation stays the paired A|B images, exactly as the paired module serves them
    assert isinstance(module.val_set, PairedImageDataset)
    assert set(module.val_set[0]) == {"A", "B", "A_path"}
    serial = UnpairedImageDataModule(synthetic_root, layout="aligned", serial=True, **SMALL)
    serial.setup("fit")
    sample = serial.train_set[2]
    assert sample["A_path"] == sample["B_path"]


def test_synthetic_unpaired_module_generates_its_data(tmp_path: Path) -> None:
    module = SyntheticUnpairedDataModule(
        tmp_path / "synthetic", num_images={"train": 3, "val": 2, "test": 2}, image_size=32, **SMALL
    )
    module.prepare_data()
    module.setup(None)
    assert module.layout == "aligned" and len(module.train_set) == 3
    assert len(module.val_set) == len(module.test_set) == 2


def test_configs_compose_and_build(tmp_path: Path) -> None:
    cfg = compose_run(["data=facades_unpaired"], tmp_path)
    assert cfg.data._target_.endswith("UnpairedImageDataModule")
    assert (cfg.data.layout, cfg.data.direction, cfg.data.load_size, cfg.data.crop_size) == (
        "aligned",
        "BtoA",
        286,
        256,
    )
    assert cfg.data.url.endswith("facades.tar.gz")  # downloads like data=facades
    cfg = compose_run(["data=unpaired_folder", f"data.root={tmp_path}"], tmp_path)
    module = instantiate(cfg.data)
    assert module.layout == "cyclegan" and module.root == tmp_path.resolve()
    cfg = compose_run(["data=synthetic_unpaired", f"paths.data_dir={tmp_path}"], tmp_path)
    assert isinstance(instantiate(cfg.data), SyntheticUnpairedDataModule)


def test_facades_served_unpaired(facades_root: Path) -> None:
    module = UnpairedImageDataModule(
        facades_root, layout="aligned", direction="BtoA", verify_images=False, **SMALL
    )
    module.setup("fit")
    assert len(module.train_set) == 400 and len(module.val_set) == 106  # val falls back to test
    sample = module.val_set[0]
    assert sample["A"].shape == sample["B"].shape == (3, 32, 32)


# -- errors --------------------------------------------------------------------------------


def test_empty_domain_folder_names_the_folder(cyclegan_root: Path) -> None:
    for image in (cyclegan_root / "trainB").iterdir():
        image.unlink()
    with pytest.raises(DataError, match=r"trainB contains no images; put the domain's images"):
        UnpairedImageDataModule(cyclegan_root, **SMALL).setup("fit")


def test_missing_domain_folder_names_root_and_folders(tmp_path: Path) -> None:
    _save(tmp_path / "trainA" / "a.png", _flat(0, 8, 8))
    module = UnpairedImageDataModule(tmp_path, **SMALL)
    with pytest.raises(
        DataError, match=r"data.root=.* holds trainA/; .* needs trainA/ and trainB/"
    ):
        module.prepare_data()
    with pytest.raises(DataError, match="does not exist"):
        UnpairedImageDataModule(tmp_path / "nope", **SMALL).setup("fit")


def test_unreadable_images_are_listed(cyclegan_root: Path) -> None:
    (cyclegan_root / "trainA" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"1 file\(s\) in .*trainA cannot be used.*broken.png"):
        UnpairedImageDataModule(cyclegan_root, **SMALL).setup("fit")


def test_bad_settings_name_the_key(cyclegan_root: Path) -> None:
    with pytest.raises(ConfigError, match="data.layout='paired'"):
        UnpairedImageDataModule(cyclegan_root, layout="paired", **SMALL)
    with pytest.raises(ConfigError, match="data.val_fallback=3 .*a paired layout"):
        UnpairedImageDataModule(cyclegan_root, val_fallback=3, **SMALL)
