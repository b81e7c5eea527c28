"""Layouts and splits: separate A/B folders matched by name, unmatched files, splits drawn from
one folder, sub-folders and hidden files, mixed sizes, the generator's size multiple."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import read_metrics, run_tiny, save_ab, small_paired_module
from pix2pix_lit.data import UnpairedImageDataModule
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.networks import ResnetGenerator, UnetGenerator

pytestmark = pytest.mark.filterwarnings("ignore:data.root=.* has no .*val")


def _save(path: Path, value: int, size: tuple[int, int] = (40, 40), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode != "RGB" else (value, value, value)).save(path)


def _value(image: torch.Tensor) -> int:
    return round(float(image.mean() + 1) * 127.5)


@pytest.fixture
def separate_root(tmp_path: Path) -> Path:
    """train/A/*.jpg with train/B/*.png partners of the same name (A value i, B value 100+i),
    one A in a sub-folder, plus junk that must be ignored."""
    root = tmp_path / "sep"
    for i in range(4):
        _save(root / "train" / "A" / f"img{i}.jpg", 10 * i)
        _save(root / "train" / "B" / f"img{i}.PNG", 100 + 10 * i)
    _save(root / "train" / "A" / "sub" / "deep.jpg", 77)
    _save(root / "train" / "B" / "sub" / "deep.png", 177)
    (root / "train" / "A" / "._img0.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / "train" / "A" / ".DS_Store").write_bytes(b"x")
    (root / "train" / "B" / "readme.txt").write_text("labels")
    for i in range(2):
        _save(root / "test" / "A" / f"t{i}.png", 50)
        _save(root / "test" / "B" / f"t{i}.png", 150)
    return root


def test_separate_layout_matches_by_name_across_extensions_and_subfolders(
    separate_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module = small_paired_module(separate_root, layout="separate", val_fallback="test")
    with caplog.at_level("INFO"):
        module.setup("fit")
    keys = [pair.key for pair in module.train_set.pairs]
    assert keys == ["img0", "img1", "img2", "img3", str(Path("sub") / "deep")]
    for index, pair in enumerate(module.train_set.pairs):
        sample = module.val_set.transform(*module.train_set.read(index))
        assert _value(sample[1]) - _value(sample[0]) == 100, pair.key  # B is A's partner
    assert "ignored 3 hidden or non-image file(s)" in caplog.text
    assert "data: 5 training and 2 validation pairs" in caplog.text


def test_separate_layout_btoa_serves_b_as_input(separate_root: Path) -> None:
    module = small_paired_module(
        separate_root, layout="separate", direction="BtoA", val_fallback="test", batch_size=1
    )
    module.setup("fit")
    sample = module.val_set[0]
    assert _value(sample["A"]) == 150 and _value(sample["B"]) == 50
    assert sample["A_path"].endswith(str(Path("test") / "B" / "t0.png"))


def test_unmatched_files_are_listed_at_once_or_skipped(separate_root: Path) -> None:
    _save(separate_root / "train" / "A" / "lonely.jpg", 1)
    _save(separate_root / "train" / "B" / "orphan.png", 2)
    with pytest.raises(DataError) as caught:
        small_paired_module(separate_root, layout="separate").setup("fit")
    message = str(caught.value)
    assert message.startswith("2 file(s) in ") and "have no partner" in message
    assert "lonely.jpg (no B file)" in message and "orphan.png (no A file)" in message
    assert "data.unmatched=skip" in message
    module = small_paired_module(
        separate_root, layout="separate", unmatched="skip", val_fallback="test"
    )
    with pytest.warns(UserWarning, match=r"left out 2 file\(s\) .*lonely.jpg \(no B file\)"):
        module.setup("fit")
    assert len(module.train_set) == 5


def test_no_a_matching_any_b_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    _save(tmp_path / "train" / "A" / "x.png", 1)
    _save(tmp_path / "train" / "B" / "y.png", 2)
    with pytest.raises(DataError, match=r"no A file in .*train matches a B file \(2 unmatched"):
        small_paired_module(tmp_path, layout="separate", unmatched="skip").setup("fit")


def test_two_a_files_with_one_name_are_reported(separate_root: Path) -> None:
    _save(separate_root / "train" / "A" / "img1.png", 1)
    with pytest.raises(DataError, match=r"img1.(jpg|png) \(A file img1.(jpg|png) has the same"):
        small_paired_module(separate_root, layout="separate").setup("fit")


def _one_folder(tmp_path: Path, count: int = 10) -> Path:
    """A CMP-like folder: photo NNNN.jpg beside labels NNNN.png, plus .xml files."""
    for i in range(count):
        _save(tmp_path / "base" / f"cmp_{i:04d}.jpg", i, size=(40 + i, 48))
        _save(tmp_path / "base" / f"cmp_{i:04d}.png", 200, size=(40 + i, 48))
        (tmp_path / "base" / f"cmp_{i:04d}.xml").write_text("<xml/>")
    return tmp_path / "base"


ONE_FOLDER = {"layout": "separate", "a_dir": ".", "b_dir": ".", "a_glob": "*.jpg",
              "b_glob": "*.png"}  # fmt: skip


def test_test_fraction_draws_a_seeded_split_from_one_folder(tmp_path: Path) -> None:
    root = _one_folder(tmp_path)
    splits = []
    for seed in (0, 0, 1):
        module = small_paired_module(root, test_fraction=0.2, seed=seed, **ONE_FOLDER)
        with pytest.warns(UserWarning, match="validating on 'test/'"):
            module.setup(None)
        train, test = module.train_set.pairs, module.test_set.pairs
        assert (
            len(train) == 8
            and len(test) == 2
            and not {p.key for p in train} & {p.key for p in test}
        )
        splits.append([p.key for p in test])
    assert splits[0] == splits[1] != splits[2]


def test_test_list_names_the_test_pairs(tmp_path: Path) -> None:
    root = _one_folder(tmp_path)
    listing = tmp_path / "test.txt"
    listing.write_text("cmp_0003.jpg\ncmp_0007\n\n")
    module = small_paired_module(root, test_list=listing, **ONE_FOLDER)
    module.setup("test")
    assert [p.key for p in module.test_set.pairs] == ["cmp_0003", "cmp_0007"]
    listing.write_text("cmp_0003\nnope_1\n")
    with pytest.raises(DataError, match=r"1 name\(s\) in data.test_list=.* match no pair.*nope_1"):
        small_paired_module(root, test_list=listing, **ONE_FOLDER).setup("test")


def test_mixed_sizes_need_batch_size_1_with_native_sizes(tmp_path: Path) -> None:
    root = _one_folder(tmp_path, count=4)
    module = small_paired_module(root, preprocess="none", test_fraction=0.25, **ONE_FOLDER)
    with pytest.raises(ConfigError, match=r"data.batch_size=2 with data.preprocess=none: the "
                       r"samples come in 3 sizes .*use batch size 1"):  # fmt: skip
        module.setup("fit")
    module = small_paired_module(
        root, preprocess="none", test_fraction=0.25, batch_size=1, **ONE_FOLDER
    )
    with pytest.warns(UserWarning):
        module.setup("fit")
    # native sizes, each side rounded to the nearest multiple of 1 (= unchanged)
    widths = sorted(module.train_set[i]["A"].shape[-1] for i in range(3))
    assert len(set(widths)) == 3 and all(40 <= w <= 43 for w in widths)


def test_evaluation_batches_are_bucketed_by_size(tmp_path: Path) -> None:
    root = _one_folder(tmp_path, count=3)  # 40, 41, 42 wide
    for i in range(3, 6):  # three more of width 40
        _save(root / f"cmp_x{i}.jpg", i, size=(40, 48))
        _save(root / f"cmp_x{i}.png", 200, size=(40, 48))
    listing = tmp_path / "test.txt"
    listing.write_text("cmp_0000\ncmp_0001\ncmp_0002\ncmp_x3\ncmp_x4\n")
    module = small_paired_module(
        root, preprocess="none", test_list=listing, batch_size=1, val_batch_size=2, **ONE_FOLDER
    )
    module.setup("test")
    widths = [batch["A"].shape[-1] for batch in module.test_dataloader()]
    counts = [len(batch["A"]) for batch in module.test_dataloader()]
    # three of width 40 (cmp_0000, cmp_x3, cmp_x4): a batch of 2 and one of 1; 41 and 42 alone
    assert sorted(zip(widths, counts, strict=True)) == [(40, 1), (40, 2), (41, 1), (42, 1)]
    paths = [p for batch in module.test_dataloader() for p in batch["A_path"]]
    assert sorted(paths) == sorted(str(p.a) for p in module.test_set.pairs)


class _FakeTask:
    def __init__(self, generator: torch.nn.Module) -> None:
        self.generator = generator

    def translation_network(self) -> torch.nn.Module:
        return self.generator


class _FakeTrainer:
    def __init__(self, generator: torch.nn.Module) -> None:
        self.lightning_module = _FakeTask(generator)


@pytest.mark.parametrize(
    ("generator", "expected"),
    [
        (UnetGenerator(3, 3, num_downs=5, ngf=4), (64, 64)),  # multiple 32: 75x50 -> 64x64
        (ResnetGenerator(3, 3, ngf=4, n_blocks=1), (76, 48)),  # multiple 4: 75x50 -> 76x48
    ],
)
def test_native_sizes_follow_the_generators_size_multiple(
    tmp_path: Path, generator: torch.nn.Module, expected: tuple[int, int]
) -> None:
    for split in ("train", "test"):
        save_ab(tmp_path / split / "x.png", np.zeros((50, 150, 3), np.uint8))
    module = small_paired_module(tmp_path, preprocess="none", batch_size=1)
    module.trainer = _FakeTrainer(generator)
    with pytest.warns(UserWarning):
        module.setup("fit")
    sample = module.val_set[0]
    assert (sample["A"].shape[-1], sample["A"].shape[-2]) == expected
    assert generator(sample["A"][None]).shape[-2:] == sample["A"].shape[-2:]


def test_a_crop_the_generator_cannot_take_names_the_multiple(synthetic_root: Path) -> None:
    module = small_paired_module(synthetic_root, load_size=40, crop_size=36)
    module.trainer = _FakeTrainer(UnetGenerator(3, 3, num_downs=5, ngf=4))
    with pytest.raises(ConfigError, match=r"data.crop_size=36 is not a multiple of 32.*e.g. 32"):
        module.setup("fit")


def test_grayscale_to_colour_channels(synthetic_root: Path) -> None:
    module = small_paired_module(synthetic_root, in_channels=1, out_channels=3)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["A"].shape == (2, 1, 32, 32) and batch["B"].shape == (2, 3, 32, 32)


def test_unpaired_cyclegan_folders_recurse_and_ignore_hidden_files(tmp_path: Path) -> None:
    for split in ("train", "test"):
        _save(tmp_path / f"{split}A" / "a.jpg", 10)
        _save(tmp_path / f"{split}A" / "more" / "b.JPG", 20)
        _save(tmp_path / f"{split}B" / "c.png", 200, mode="L")
        (tmp_path / f"{split}B" / "._c.png").write_bytes(b"resource fork")
    module = UnpairedImageDataModule(
        tmp_path, load_size=36, crop_size=32, num_workers=0, out_channels=1
    )
    module.setup("fit")
    assert len(module.train_set) == 2
    sample = module.train_set[1]
    assert sample["A"].shape == (3, 32, 32) and sample["B"].shape == (1, 32, 32)
    assert sample["A_path"].endswith(str(Path("more") / "b.JPG"))


def test_grayscale_to_colour_trains_end_to_end(tmp_path: Path) -> None:
    """model.in_channels=1: the data follows (data.in_channels interpolates it), and a tiny
    run trains, validates and draws its image grid."""
    run_tiny(tmp_path, "model.in_channels=1", "trainer.max_epochs=1",
             "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
             "trainer.num_sanity_val_steps=0")  # fmt: skip
    assert any(row.get("val/L1") for row in read_metrics(tmp_path / "run"))
