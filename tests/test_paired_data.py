"""The paired datamodule: batches, repeatable val/test loaders, seeded augmentation, the val
fallback, the real CMP Facades."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning import seed_everything

from helpers import gradient_pair, save_ab, small_paired_module
from pix2pix_lit.data import PairedImageDataModule


def test_batches_have_expected_keys_shapes_and_range(synthetic_root: Path) -> None:
    module = small_paired_module(synthetic_root, batch_size=4)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert set(batch) == {"A", "B", "A_path"}
    for key in ("A", "B"):
        assert batch[key].shape == (4, 3, 32, 32) and batch[key].dtype == torch.float32
        assert batch[key].min() >= -1 and batch[key].max() <= 1
    assert all(Path(p).parent == synthetic_root / "train" for p in batch["A_path"])
    assert len(module.train_set) == 8 and len(module.val_set) == 4


def test_val_and_test_loaders_repeat_exactly(synthetic_root: Path) -> None:
    module = small_paired_module(synthetic_root)
    module.setup("fit")
    module.setup("test")
    for make_loader in (module.val_dataloader, module.test_dataloader):
        first, second = list(make_loader()), list(make_loader())
        assert [b["A_path"] for b in first] == [b["A_path"] for b in second]
        assert all(torch.equal(x["A"], y["A"]) for x, y in zip(first, second, strict=True))


def test_sample_val_batch_returns_the_first_val_pairs(synthetic_root: Path) -> None:
    module = small_paired_module(synthetic_root)
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
        save_ab(root / "train" / f"{index}.png", gradient_pair(32))
    return root


def _train_epoch(root: Path, seed: int, num_workers: int) -> list[torch.Tensor]:
    seed_everything(seed, workers=True)
    module = small_paired_module(root, batch_size=1, num_workers=num_workers, val_fallback=2)
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


def test_missing_val_falls_back_to_test_with_warning(no_val_root: Path) -> None:
    module = small_paired_module(no_val_root, load_size=16, crop_size=16)
    with pytest.warns(UserWarning, match=r"no 'val/' folder; validating on 'test/' instead"):
        module.setup("fit")
    assert [p.parent.name for p in module.val_set.paths] == ["test"] * 3
    assert len(next(iter(module.val_dataloader()))["A"]) == 2


def test_missing_val_holds_out_n_train_images_deterministically(no_val_root: Path) -> None:
    splits = []
    for _ in range(2):
        module = small_paired_module(
            no_val_root, load_size=16, crop_size=16, val_fallback=2, seed=3
        )
        with pytest.warns(UserWarning, match="holding out 2 of its 'train' pairs"):
            module.setup("fit")
        splits.append((module.train_set.paths, module.val_set.paths))
    (train, val), repeat = splits
    assert len(val) == 2 and len(train) == 4 and not set(train) & set(val)
    assert repeat == (train, val)


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
