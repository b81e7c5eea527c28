"""Tests of the paired-image data layer: transforms, datasets, datamodules, download, configs."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning import seed_everything
from PIL import Image

from pix2pix_lit.data import (
    PairedImageDataModule,
    PairedImageDataset,
    SyntheticPairedDataModule,
    extract_archive,
    fetch_dataset,
    make_synthetic_paired_dataset,
)
from pix2pix_lit.data.io import read_rgb
from pix2pix_lit.data.transforms import eval_transform, train_transform
from pix2pix_lit.errors import ConfigError, DataError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# One uint8 level in [-1, 1] units: bicubic resizing may round A and 255 - A differently.
ONE_LEVEL = 2 / 255 + 1e-6


def _save_ab(path: Path, ab: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ab).save(path)
    return path


def _gradient_pair(size: int) -> np.ndarray:
    """An A|B image whose A encodes (x, y) in its red/green channels and B = 255 - A."""
    y, x = np.mgrid[0:size, 0:size]
    a = np.stack([x * 255 // (size - 1), y * 255 // (size - 1), np.full_like(x, 128)], axis=-1)
    a = a.astype(np.uint8)
    return np.concatenate([a, 255 - a], axis=1)


def _small_module(root: Path, **overrides: object) -> PairedImageDataModule:
    settings: dict[str, object] = {
        "load_size": 36,
        "crop_size": 32,
        "batch_size": 2,
        "num_workers": 0,
    }
    settings.update(overrides)
    return PairedImageDataModule(root, **settings)


# --- transforms and dataset -------------------------------------------------------------------


def test_train_transform_crops_and_flips_a_and_b_identically(tmp_path: Path) -> None:
    path = _save_ab(tmp_path / "pair.png", _gradient_pair(64))
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
    path = _save_ab(tmp_path / "pair.png", _gradient_pair(64))
    dataset = PairedImageDataset([path], eval_transform(crop_size=32))
    first, second = dataset[0], dataset[0]
    assert first["A"].shape == (3, 32, 32)
    assert torch.equal(first["A"], second["A"]) and torch.equal(first["B"], second["B"])
    assert first["A"][0, :, 0].mean() < first["A"][0, :, -1].mean(), "eval must not flip"


def test_direction_btoa_swaps_the_halves(tmp_path: Path) -> None:
    left = np.full((16, 16, 3), (255, 0, 0), dtype=np.uint8)
    right = np.full((16, 16, 3), (0, 0, 255), dtype=np.uint8)
    path = _save_ab(tmp_path / "pair.png", np.concatenate([left, right], axis=1))
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
        image = Image.fromarray(_gradient_pair(8)).convert(mode)
    path = tmp_path / ("image.tif" if mode == "CMYK" else "image.png")
    image.save(path)
    array = read_rgb(path)
    assert array.dtype == np.uint8 and array.shape == (8, 16, 3)
    if mode == "I;16":
        assert (array == 255).all(), "16-bit white must map to 8-bit white, not be clipped"


# --- datamodule -------------------------------------------------------------------------------


def test_batches_have_expected_keys_shapes_and_range(synthetic_root: Path) -> None:
    module = _small_module(synthetic_root, batch_size=4)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert set(batch) == {"A", "B", "A_path"}
    for key in ("A", "B"):
        assert batch[key].shape == (4, 3, 32, 32) and batch[key].dtype == torch.float32
        assert batch[key].min() >= -1 and batch[key].max() <= 1
    assert all(Path(p).parent == synthetic_root / "train" for p in batch["A_path"])
    assert len(module.train_set) == 8 and len(module.val_set) == 4


def test_val_and_test_loaders_repeat_exactly(synthetic_root: Path) -> None:
    module = _small_module(synthetic_root)
    module.setup("fit")
    module.setup("test")
    for make_loader in (module.val_dataloader, module.test_dataloader):
        first, second = list(make_loader()), list(make_loader())
        assert [b["A_path"] for b in first] == [b["A_path"] for b in second]
        assert all(torch.equal(x["A"], y["A"]) for x, y in zip(first, second, strict=True))


def test_sample_val_batch_returns_the_first_val_pairs(synthetic_root: Path) -> None:
    module = _small_module(synthetic_root)
    module.setup("fit")
    batch = module.sample_val_batch(3)
    assert batch["A"].shape == (3, 3, 32, 32)
    assert batch["A_path"] == [str(p) for p in module.val_set.paths[:3]]
    assert module.sample_val_batch(100)["A"].shape[0] == len(module.val_set)


@pytest.fixture(scope="module")
def identical_pairs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight copies of one gradient pair: any difference between samples is augmentation."""
    root = tmp_path_factory.mktemp("identical")
    for index in range(8):
        _save_ab(root / "train" / f"{index}.png", _gradient_pair(32))
    return root


def _train_epoch(root: Path, seed: int, num_workers: int) -> list[torch.Tensor]:
    seed_everything(seed, workers=True)
    module = _small_module(root, batch_size=1, num_workers=num_workers, val_fallback=2)
    with pytest.warns(UserWarning, match="holding out 2"):
        module.setup("fit")
    return [batch["A"] for batch in module.train_dataloader()]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_seeded_runs_give_identical_batches(identical_pairs_root: Path, num_workers: int) -> None:
    first = _train_epoch(identical_pairs_root, 7, num_workers)
    second = _train_epoch(identical_pairs_root, 7, num_workers)
    other = _train_epoch(identical_pairs_root, 8, num_workers)
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(first, other, strict=True))
    # Workers sharing one albumentations RNG would give pairs of identical samples (3 distinct
    # of 6); independent draws collide only by chance in the small crop space.
    distinct = {tuple(sample.flatten()[::37].tolist()) for sample in first}
    assert len(distinct) >= len(first) - 1


@pytest.fixture
def no_val_root(tmp_path: Path) -> Path:
    return make_synthetic_paired_dataset(tmp_path / "noval", {"train": 6, "test": 3}, size=16)


def test_missing_val_falls_back_to_test_with_warning(no_val_root: Path) -> None:
    module = _small_module(no_val_root, load_size=16, crop_size=16)
    with pytest.warns(UserWarning, match=r"no 'val/' folder; validating on 'test/' instead"):
        module.setup("fit")
    assert [p.parent.name for p in module.val_set.paths] == ["test"] * 3
    assert len(next(iter(module.val_dataloader()))["A"]) == 2


def test_missing_val_holds_out_n_train_images_deterministically(no_val_root: Path) -> None:
    splits = []
    for _ in range(2):
        module = _small_module(no_val_root, load_size=16, crop_size=16, val_fallback=2, seed=3)
        with pytest.warns(UserWarning, match="holding out 2 of its 'train/' images"):
            module.setup("fit")
        splits.append((module.train_set.paths, module.val_set.paths))
    (train, val), repeat = splits
    assert len(val) == 2 and len(train) == 4 and not set(train) & set(val)
    assert repeat == (train, val)


# --- errors a user can act on -----------------------------------------------------------------


def test_missing_root_without_url_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    module = _small_module(missing)
    pattern = rf"data.root={re.escape(str(missing))} does not exist \(no 'train/' folder\) and no data.url"
    with pytest.raises(DataError, match=pattern):
        module.prepare_data()
    with pytest.raises(DataError, match=pattern):
        module.setup("fit")


def test_missing_root_with_download_disabled_says_so(tmp_path: Path) -> None:
    module = _small_module(tmp_path / "nowhere", url="file:///x.tar.gz", download=False)
    with pytest.raises(DataError, match="data.download=false"):
        module.prepare_data()


def test_relative_root_is_relative_to_cwd(
    synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(synthetic_root.parent)
    assert _small_module(Path(synthetic_root.name)).root == synthetic_root


def test_empty_split_names_folder_and_extensions(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(
        DataError, match=rf"{re.escape(str(tmp_path / 'train'))} contains no images.*\.png"
    ):
        _small_module(tmp_path).setup("fit")


def test_non_2to1_images_are_all_listed(tmp_path: Path) -> None:
    train = tmp_path / "train"
    _save_ab(train / "good.png", np.zeros((8, 16, 3), np.uint8))
    for index in range(12):
        _save_ab(train / f"bad{index:02d}.png", np.zeros((10, 11 + 2 * index, 3), np.uint8))
    (train / "a_broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError) as caught:
        _small_module(tmp_path).setup("fit")
    message = str(caught.value)
    assert "13 file(s)" in message and "width = 2 x height" in message
    assert "bad00.png (11x10)" in message and "a_broken.jpg (unreadable" in message
    assert "and 3 more" in message and "good.png" not in message and "\n" not in message


def test_truncated_images_are_found_by_the_scan_not_mid_epoch(tmp_path: Path) -> None:
    train = tmp_path / "train"
    train.mkdir(parents=True)
    noise = np.random.default_rng(0).integers(0, 256, (3, 64, 128, 3), dtype=np.uint8)
    for index in range(3):
        Image.fromarray(noise[index]).save(train / f"{index}.jpg")
    whole = (train / "1.jpg").read_bytes()
    (train / "1.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"1 file\(s\).*1.jpg \(unreadable: (?i:.*truncated)"):
        _small_module(tmp_path).setup("fit")
    # header-only scanning (verify_images=false) lets it through to fail when read
    module = _small_module(tmp_path, verify_images=False, val_fallback=1)
    with pytest.warns(UserWarning):
        module.setup("fit")


def test_missing_fallback_split_names_the_key(no_val_root: Path) -> None:
    module = _small_module(no_val_root, val_fallback="holdout")
    with pytest.raises(DataError, match=r"no 'holdout/' folder .*data.val_fallback"):
        module.setup("fit")


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"direction": "CtoD"}, r"data.direction='CtoD'.*AtoB, BtoA"),
        ({"load_size": 16, "crop_size": 32}, r"data.load_size=16.*data.crop_size=32"),
        ({"val_fallback": True}, r"data.val_fallback=True"),
        ({"val_fallback": 0}, r"data.val_fallback=0"),
        ({"batch_size": 0}, r"data.batch_size=0"),
    ],
)
def test_bad_settings_raise_config_error(
    synthetic_root: Path, overrides: dict[str, object], pattern: str
) -> None:
    with pytest.raises(ConfigError, match=pattern):
        _small_module(synthetic_root, **overrides)


def test_holding_out_every_train_image_is_rejected(no_val_root: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.val_fallback=6 would hold out all 6"):
        _small_module(no_val_root, val_fallback=6).setup("fit")


# --- download, verify, extract ----------------------------------------------------------------

ARCHIVE_COUNTS = {"train": 3, "val": 2, "test": 2}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A facades-like .tar.gz: a top-level ``facades/`` folder holding train/val/test."""
    work = tmp_path_factory.mktemp("archive")
    dataset = make_synthetic_paired_dataset(work / "facades", ARCHIVE_COUNTS, size=16)
    path = work / "facades.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(dataset, arcname="facades")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepare_data_downloads_verifies_and_extracts(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "data" / "facades"
    module = _small_module(
        root,
        url=archive.as_uri(),
        sha256=_sha256(archive),
        expected_counts=ARCHIVE_COUNTS,
        load_size=16,
        crop_size=16,
    )
    module.prepare_data()
    assert sorted(p.name for p in root.iterdir()) == ["test", "train", "val"]
    assert not [p for p in root.parent.iterdir() if p != root], "temporary files left behind"
    module.setup("fit")
    assert len(module.train_set) == 3 and len(module.val_set) == 2
    module.url = "file:///does/not/exist.tar.gz"
    module.prepare_data()  # root is complete now: nothing is fetched again


def test_wrong_checksum_is_rejected_and_nothing_is_placed(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "facades"
    with pytest.raises(DataError, match=r"sha256 of .* but data.sha256=0000"):
        fetch_dataset(archive.as_uri(), root, sha256="0" * 64)
    assert not root.exists()


def test_wrong_counts_name_split_expected_and_found(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "facades"
    expected = {"train": 400, "val": 2, "test": 106}
    with pytest.raises(DataError) as caught:
        fetch_dataset(archive.as_uri(), root, expected_counts=expected)
    message = str(caught.value)
    assert "split 'train' expected 400 images, found 3" in message
    assert "split 'test' expected 106 images, found 2" in message and "'val'" not in message
    assert not root.exists()


def test_unreachable_url_and_bad_scheme_raise_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="could not download data.url=file:"):
        fetch_dataset((tmp_path / "missing.tar.gz").as_uri(), tmp_path / "root")
    with pytest.raises(DataError, match="unsupported scheme 'ftp'"):
        fetch_dataset("ftp://example.com/data.tar.gz", tmp_path / "root")


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    link = tarfile.TarInfo(name)
    link.type, link.linkname = tarfile.SYMTYPE, target
    return link


@pytest.mark.parametrize(
    "member",
    [tarfile.TarInfo("../evil.txt"), tarfile.TarInfo("/tmp/evil.txt"), _symlink("link", "/etc")],
    ids=["dotdot", "absolute", "symlink-out"],
)
def test_archive_members_escaping_the_target_are_rejected(
    tmp_path: Path, member: tarfile.TarInfo
) -> None:
    archive = _tar_with(tmp_path / "evil.tar.gz", member, b"pwned")
    dest = tmp_path / "out"
    with pytest.raises(DataError, match=rf"refusing to extract .*{re.escape(member.name)}"):
        extract_archive(archive, dest)
    assert not (tmp_path / "evil.txt").exists() and not any(dest.iterdir())


def test_zip_archives_are_extracted(tmp_path: Path) -> None:
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("set/train/a.png", b"x")
    assert (extract_archive(path, tmp_path / "out") / "set" / "train" / "a.png").is_file()


# --- real CMP Facades -------------------------------------------------------------------------


def test_real_facades(facades_root: Path) -> None:
    module = PairedImageDataModule(facades_root, direction="BtoA", num_workers=0)
    module.prepare_data()
    with pytest.warns(UserWarning, match="validating on 'test/' instead"):
        module.setup("fit")
    module.setup("test")
    assert (len(module.train_set), len(module.val_set), len(module.test_set)) == (400, 106, 106)
    batch = next(iter(module.train_dataloader()))
    assert batch["A"].shape == batch["B"].shape == (1, 3, 256, 256)
    assert batch["A"].min() >= -1 and batch["A"].max() <= 1


# --- Hydra configs ----------------------------------------------------------------------------


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
