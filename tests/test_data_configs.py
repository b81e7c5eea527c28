"""The data Hydra configs: facades (the paper's recipe), folder and synthetic."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from pix2pix_lit.data import PairedImageDataModule, SyntheticPairedDataModule

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
