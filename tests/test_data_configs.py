"""The data Hydra configs: facades (the paper's recipe), folder, synthetic, and the presets of
the reference's datasets (downloaded through file:// archives)."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

from pix2pix_lit.data import (
    PairedImageDataModule,
    SyntheticPairedDataModule,
    UnpairedImageDataModule,
)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def _compose_data(config: str, data_dir: Path, *overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(overrides=[f"+data={config}", f"+paths.data_dir={data_dir}", *overrides])
    return instantiate(cfg.data), cfg


def test_facades_config_instantiates_the_paper_recipe(tmp_path: Path) -> None:
    module, cfg = _compose_data("facades", tmp_path)
    assert isinstance(module, PairedImageDataModule)
    assert module.root == tmp_path / "facades" and module.direction == "BtoA"
    assert (module.load_size, module.crop_size, module.batch_size) == (286, 256, 1)
    assert module.url.endswith("/facades.tar.gz")
    assert module.expected_counts == {"train": 400, "val": 100, "test": 106}
    assert cfg.data.crop_size == 256


def test_folder_config_needs_a_root_and_serves_it(synthetic_root: Path, tmp_path: Path) -> None:
    module, _ = _compose_data(
        "folder", tmp_path, f"data.root={synthetic_root}", "data.num_workers=0"
    )
    assert module.root == synthetic_root and module.direction == "AtoB"
    module.setup("fit")
    assert len(module.train_set) == 8


def test_synthetic_config_generates_its_data(tmp_path: Path) -> None:
    module, _ = _compose_data("synthetic", tmp_path, "data.num_images={train: 4, val: 2}")
    assert isinstance(module, SyntheticPairedDataModule)
    module.prepare_data()
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["A"].shape == (2, 3, 64, 64)
    assert len(module.train_set) == 4 and len(module.val_set) == 2


PAIRED_PRESETS = {
    "facades": "BtoA",
    "maps": "AtoB",
    "edges2shoes": "AtoB",
    "edges2handbags": "AtoB",
    "night2day": "AtoB",
    "cityscapes": "BtoA",
}
UNPAIRED_PRESETS = ["horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo"]


@pytest.mark.parametrize("name", [*PAIRED_PRESETS, *UNPAIRED_PRESETS])
def test_reference_dataset_presets(tmp_path: Path, name: str) -> None:
    module, _ = _compose_data(name, tmp_path)
    assert module.root == tmp_path / name and module.expected_counts
    if name in UNPAIRED_PRESETS:
        assert isinstance(module, UnpairedImageDataModule) and module.layout == "cyclegan"
        assert module.url == f"http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
        assert set(module.expected_counts) == {"trainA", "trainB", "testA", "testB"}
        return
    assert module.direction == PAIRED_PRESETS[name]
    if name == "cityscapes":  # licence: no download, the config says where to get it
        assert module.url is None
    else:
        assert module.url == f"http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
    # every split the module reads is one the archive holds (maps & co. have no test/)
    assert module.test_split in module.expected_counts or name == "night2day"


def _archive(tmp_path: Path, name: str, folders: dict[str, int], size: tuple[int, int]) -> Path:
    """A tiny archive shaped like the reference's: ``name/<folder>/<i>.jpg``."""
    for folder, count in folders.items():
        for index in range(count):
            path = tmp_path / "src" / name / folder / f"{index}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", size, (index * 20, 0, 0)).save(path)
    if name in UNPAIRED_PRESETS:
        archive = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(archive, "w") as zipped:
            for path in (tmp_path / "src").rglob("*.jpg"):
                zipped.write(path, path.relative_to(tmp_path / "src"))
    else:
        archive = tmp_path / f"{name}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(tmp_path / "src" / name, arcname=name)
    return archive


@pytest.mark.filterwarnings("ignore:data.root=.* has no valA")
@pytest.mark.parametrize(
    ("name", "folders", "size"),
    [
        ("horse2zebra", {"trainA": 3, "trainB": 2, "testA": 1, "testB": 1}, (40, 40)),
        ("maps", {"train": 3, "val": 2}, (80, 40)),
    ],
)
def test_presets_download_through_file_urls(
    tmp_path: Path, name: str, folders: dict[str, int], size: tuple[int, int]
) -> None:
    archive = _archive(tmp_path, name, folders, size)
    counts = "{" + ", ".join(f"{k}: {v}" for k, v in folders.items()) + "}"
    module, _ = _compose_data(
        name, tmp_path / "data", f"data.url={archive.as_uri()}", f"data.expected_counts={counts}",
        "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
    )  # fmt: skip
    module.prepare_data()
    module.setup(None)
    assert len(module.train_set) == 3 and len(module.test_set) == (1 if name != "maps" else 2)
    assert next(iter(module.train_dataloader()))["A"].shape == (1, 3, 32, 32)
