"""Aligned A/B image pairs: splits, the start-up scan and its checks, loaders.

Where the pairs are stored is a :mod:`~pix2pix_lit.data.layouts` layout (``combined`` A|B
files, the pix2pix layout; ``separate`` A/ and B/ folders). The splits are folders under the
root (``train/``, ``val/``, ``test/``; any may be renamed) or, for a dataset that comes as one
folder, drawn from it by ``test_fraction`` with a seed or named by a ``test_list`` file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset, default_collate

from pix2pix_lit.data.augment import PairAugment
from pix2pix_lit.data.download import fetch_dataset, preparing
from pix2pix_lit.data.io import check_channels, to_channels
from pix2pix_lit.data.layouts import (
    UNMATCHED_POLICIES,
    CombinedLayout,
    Found,
    Pair,
    PairLayout,
    make_layout,
    split_halves,
)
from pix2pix_lit.data.sampling import ResumableRandomSampler, SizeBatches
from pix2pix_lit.data.scan import scan_images
from pix2pix_lit.data.transforms import FIXED_SIZE_MODES, PairTransform, Preprocess, Size
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.networks.shapes import size_rule

DIRECTIONS: tuple[str, ...] = ("AtoB", "BtoA")
COMBINED = CombinedLayout()
_MAX_LISTED_FILES = 10


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ConfigError(
            f"data.direction={direction!r} is not valid; use one of {', '.join(DIRECTIONS)}"
        )


def listed(items: Sequence[str], limit: int = _MAX_LISTED_FILES) -> str:
    """The first ``limit`` of ``items``, comma-separated, and how many more there are."""
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


def split_pair(ab: np.ndarray, direction: str = "AtoB") -> tuple[np.ndarray, np.ndarray]:
    """Split an A|B image into ``(input, target)`` halves.

    With ``direction="BtoA"`` the right half is returned first, so callers always get the
    model input first whichever way the dataset is stored.
    """
    _check_direction(direction)
    left, right = split_halves(ab)
    return (left, right) if direction == "AtoB" else (right, left)


class PairedImageDataset(Dataset):
    """Aligned pairs as ``{"A", "B", "A_path"}`` samples.

    ``A`` is always the model input and ``B`` the target (``direction="BtoA"`` swaps the
    stored images); ``A_path`` is the file the input comes from. ``layout`` reads a pair;
    ``channels`` are the (input, target) channel counts (1 or 3); ``transform`` maps the two
    HWC uint8 images to tensors, applying any random draw to both.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        transform: PairTransform,
        direction: str = "AtoB",
        layout: PairLayout = COMBINED,
        channels: tuple[int, int] = (3, 3),
    ) -> None:
        _check_direction(direction)
        self.pairs = list(pairs)
        self.transform = transform
        self.direction = direction
        self.layout = layout
        self.channels = channels

    @property
    def paths(self) -> list[Path]:
        """The first file of each pair (the A|B file, or the A file)."""
        return [pair.a for pair in self.pairs]

    def _side_path(self, pair: Pair, side: int) -> Path:
        """The file of the pair's input (``side`` 0) or target (1), after ``direction``."""
        stored_side = side if self.direction == "AtoB" else 1 - side
        return pair.files[min(stored_side, len(pair.files) - 1)]

    @property
    def input_paths(self) -> list[Path]:
        return [self._side_path(pair, 0) for pair in self.pairs]

    @property
    def target_paths(self) -> list[Path]:
        return [self._side_path(pair, 1) for pair in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair ``index`` as (input, target) HWC uint8 arrays with their channel counts."""
        a, b = self.layout.read(self.pairs[index])
        if self.direction == "BtoA":
            a, b = b, a
        return to_channels(a, self.channels[0]), to_channels(b, self.channels[1])

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        """Sample ``index``, or ``(index, seed)`` to fix the augmentation's random draw."""
        index, seed = index if isinstance(index, tuple) else (index, None)
        a, b = self.transform(*self.read(index), seed=seed)
        return {"A": a, "B": b, "A_path": str(self._side_path(self.pairs[index], 0))}


class PairedImageDataModule(LightningDataModule):
    """Train/val/test loaders over a dataset of aligned pairs, in any :data:`PAIR_LAYOUTS`.

    Defaults follow the paper's facades recipe (resize to 286, random 256 crop, random flip,
    batch size 1). Batches are ``{"A": [N,C_in,H,W], "B": [N,C_out,H,W], "A_path": list[str]}``
    with values in [-1, 1]; ``A`` is the input and ``B`` the target for either ``direction``.

    Args:
        root: the dataset folder (holding the split folders); relative to the current directory.
        layout: ``"combined"`` (A|B files) or ``"separate"`` (A and B folders).
        preprocess: the reference's mode (:data:`~pix2pix_lit.data.transforms.PREPROCESS_MODES`).
        direction: ``"AtoB"`` or ``"BtoA"`` (B, the right half, is the input).
        load_size: side (or width, for ``scale_width*``) images are resized to before cropping.
        crop_size: side of the training crops and of the resized val/test images.
        flip: random horizontal flips in training.
        batch_size: training batch size.
        val_batch_size: val/test/predict batch size (default: ``batch_size``).
        num_workers: DataLoader worker processes.
        pin_memory: pin batches in page-locked memory (only when CUDA is available).
        persistent_workers: keep workers alive between epochs (only when ``num_workers > 0``).
        train_split, val_split, test_split: split folder names under ``root``.
        val_fallback: when there is no ``val_split``, a split name to validate on instead, or
            an int N to hold N training images out (chosen by ``seed``).
        test_fraction: the dataset is ``root`` itself (no split folders); this fraction of its
            pairs, drawn with ``seed``, is the test split and the rest the training split.
        test_list: as ``test_fraction``, the test split being the pairs named in this text
            file (one per line: file name, with or without extension, or relative path).
        a_dir, b_dir, a_glob, b_glob: the ``separate`` layout's folders (relative to a split
            folder, ``.`` for the folder itself) and file patterns (e.g. ``*.jpg``).
        unmatched: ``"error"`` lists files without a partner in one error; ``"skip"`` leaves
            them out with a warning that counts them.
        in_channels, out_channels: channels of the input and target images (1 or 3).
        size_multiple: sides of the ``none``/``scale_width`` images are resized to a multiple
            of it; ``None``: the generator's (:func:`~pix2pix_lit.networks.shapes.size_rule`)
            when a Trainer runs the module, otherwise 1.
        url: http(s):// or file:// archive to fetch when ``root`` has no ``train_split`` folder.
        sha256: the archive's checksum, verified when given.
        expected_counts: images per split the archive must contain, checked after extraction.
        download: allow :meth:`prepare_data` to fetch ``url``.
        seed: seed of the held-out validation and fraction test splits.
        verify_images: decode every image when scanning the splits, to report truncated or
            corrupt files (with all other problems) before training starts.
        scan_cache: folder keeping scan results between starts (keyed by file size and
            modification time); ``None``: scan every time.
        scan_workers: threads reading files in the scan (default: two per CPU core).
        augment: albumentations transforms run on A and B with one draw after the
            preprocessing, in training only (:mod:`pix2pix_lit.data.augment`).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        layout: str = "combined",
        preprocess: str = "resize_and_crop",
        direction: str = "AtoB",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        batch_size: int = 1,
        val_batch_size: int | None = None,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "test",
        val_fallback: str | int = "test",
        test_fraction: float | None = None,
        test_list: str | Path | None = None,
        a_dir: str = "A",
        b_dir: str = "B",
        a_glob: str = "*",
        b_glob: str = "*",
        unmatched: str = "error",
        in_channels: int = 3,
        out_channels: int = 3,
        size_multiple: int | None = None,
        url: str | None = None,
        sha256: str | None = None,
        expected_counts: Mapping[str, int] | None = None,
        download: bool = True,
        seed: int = 0,
        verify_images: bool = True,
        scan_cache: str | Path | None = None,
        scan_workers: int | None = None,
        augment: Sequence[Any] = (),
    ) -> None:
        super().__init__()
        _check_direction(direction)
        self.pair_layout = make_layout(layout, a_dir, b_dir, a_glob, b_glob)
        # Checks the mode and sizes now; the size multiple is only known in setup().
        Preprocess(preprocess, load_size, crop_size, flip)
        self._check_settings(locals())
        self.root = Path(root).expanduser().resolve()
        self.preprocess = preprocess
        self.direction = direction
        self.load_size = load_size
        self.crop_size = crop_size
        self.flip = flip
        self.batch_size = batch_size
        self.val_batch_size = batch_size if val_batch_size is None else val_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.train_split = train_split
        self.val_split = val_split
        self.test_split = test_split
        self.val_fallback = val_fallback
        self.test_fraction = test_fraction
        self.test_list = None if test_list is None else Path(test_list).expanduser()
        self.unmatched = unmatched
        self.channels = (in_channels, out_channels)
        self.size_multiple = size_multiple
        self.url = url
        self.sha256 = sha256
        self.expected_counts = None if expected_counts is None else dict(expected_counts)
        self.download = download
        self.seed = seed
        self.verify_images = verify_images
        self.scan_cache = scan_cache
        self.scan_workers = scan_workers
        self.augment = PairAugment(augment) if augment else None
        # Drawn from the global generator once, so seed_everything fixes every epoch's order.
        self.shuffle_seed = int(torch.randint(0, 2**31 - 1, ()).item())
        self._sampler: ResumableRandomSampler | None = None
        self._sampler_state: dict[str, Any] | None = None
        self._partition: dict[str, list[Pair]] | None = None
        # (width, height) of each scanned pair's A image, by the pair's first file
        self._pair_sizes: dict[Path, Size] = {}
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @staticmethod
    def _check_settings(settings: dict[str, Any]) -> None:
        for key in ("batch_size", "val_batch_size"):
            value = settings[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):  # fmt: skip
                raise ConfigError(f"data.{key}={value!r} must be a positive integer")
        if settings["num_workers"] < 0:
            raise ConfigError(f"data.num_workers={settings['num_workers']} must be 0 or more")
        fallback = settings["val_fallback"]
        # bool is an int subclass, but "val_fallback: true" is surely a typo, not "hold out 1".
        if (
            isinstance(fallback, bool)
            or not isinstance(fallback, (str, int))
            or (isinstance(fallback, int) and fallback < 1)
        ):
            raise ConfigError(
                f"data.val_fallback={fallback!r} is not valid; use a split folder name "
                "(e.g. 'test') or a positive int N to hold N training images out"
            )
        if settings["unmatched"] not in UNMATCHED_POLICIES:
            raise ConfigError(
                f"data.unmatched={settings['unmatched']!r} is not valid; use one of "
                f"{', '.join(UNMATCHED_POLICIES)}"
            )
        fraction = settings["test_fraction"]
        if fraction is not None and not (isinstance(fraction, float) and 0 < fraction < 1):
            raise ConfigError(
                f"data.test_fraction={fraction!r} must be a number between 0 and 1 (e.g. 0.1)"
            )
        if fraction is not None and settings["test_list"] is not None:
            raise ConfigError(
                "data.test_fraction and data.test_list both set; choose one way to draw the "
                "test split (set the other to null)"
            )
        check_channels(settings["in_channels"], "data.in_channels")
        check_channels(settings["out_channels"], "data.out_channels")
        multiple = settings["size_multiple"]
        if multiple is not None and (not isinstance(multiple, int) or multiple < 1):
            raise ConfigError(f"data.size_multiple={multiple!r} must be a positive integer or null")

    # -- fetching --------------------------------------------------------------------
    def _missing_train_error(self) -> DataError:
        what = (
            f"data.root={self.root} does not exist"
            if not self.root.exists()
            else f"data.root={self.root} exists"
        )
        what += f" (no '{self.train_split}/' folder)"
        layout = (
            f"point data.root at a folder with {self.train_split}/ "
            f"(and {self.val_split}/, {self.test_split}/), or set data.test_fraction to draw "
            "the splits from one folder"
        )
        if not self.url:
            return DataError(f"{what} and no data.url to download it from; {layout}")
        if not self.download:
            return DataError(
                f"{what} and data.download=false; set data.download=true to fetch "
                f"data.url={self.url}, or {layout}"
            )
        return DataError(f"{what}; call prepare_data() (the Trainer does) to fetch data.url")

    @property
    def _one_folder(self) -> bool:
        """Whether the splits are drawn from ``root`` itself rather than split folders."""
        return self.test_fraction is not None or self.test_list is not None

    def _is_in_place(self) -> bool:
        return self.root.is_dir() if self._one_folder else (self.root / self.train_split).is_dir()

    def prepare_data(self) -> None:
        """Download and extract ``url`` into ``root`` when ``root`` has no train split."""
        if self._is_in_place():
            return
        if not (self.url and self.download):
            raise self._missing_train_error()
        self._create_once(self._is_in_place, lambda: self._fetch(self.train_split))

    def _create_once(self, is_in_place: Callable[[], bool], create: Callable[[], Any]) -> None:
        """Create the dataset at ``root`` with ``create`` while holding the lock on it,
        unless another job created it while this one waited for the lock."""
        with preparing(self.root):
            if not is_in_place():
                create()

    def _fetch(self, archive_train_split: str) -> None:
        """Fetch ``url`` into ``root``; ``archive_train_split`` names the folder that marks
        the dataset inside the archive."""
        fetch_dataset(
            self.url,
            self.root,
            sha256=self.sha256,
            expected_counts=self.expected_counts,
            train_split=archive_train_split,
        )

    # -- finding and checking pairs --------------------------------------------------
    def _found_pairs(
        self, found: Found, where: Path, layout: PairLayout | None = None
    ) -> list[Pair]:
        """The pairs of ``found`` (by ``layout``, default the module's), every file read (or
        its header) and checked; all the problems of the split in one :class:`DataError`."""
        layout = layout or self.pair_layout
        if not found.pairs and not found.unmatched:
            ignored = f" ({len(found.ignored)} hidden or non-image files ignored)"
            raise DataError(layout.describe(where) + (ignored if found.ignored else ""))
        if not found.pairs:
            raise DataError(
                f"no A file in {where} matches a B file ({len(found.unmatched)} unmatched: "
                f"{listed(found.unmatched)}); data.layout={layout.name} pairs files by name"
            )
        if found.unmatched and self.unmatched == "error":
            raise DataError(
                f"{len(found.unmatched)} file(s) in {where} have no partner: "
                f"{listed(found.unmatched)}; add the missing files or set data.unmatched=skip"
            )
        if found.unmatched:
            rank_zero_warn(
                f"data.unmatched=skip: left out {len(found.unmatched)} file(s) of {where} "
                f"without a partner: {listed(found.unmatched)}"
            )
        files = [path for pair in found.pairs for path in pair.files]
        scan = scan_images(
            files,
            decode=self.verify_images,
            cache_dir=self.scan_cache,
            workers=self.scan_workers,
            desc=f"scanning {where.name}",
        )
        problems = [f"{path.relative_to(where)} (unreadable: {why})" for path, why in
                    scan.unreadable.items()]  # fmt: skip
        preprocess = Preprocess(self.preprocess, self.load_size, self.crop_size, self.flip)
        pairs = []
        for pair in found.pairs:
            if any(path in scan.unreadable for path in pair.files):
                continue
            size = layout.pair_size(pair, scan.sizes)
            if isinstance(size, str):
                problems.append(f"{pair.a.relative_to(where)} ({size})")
            elif preprocess.too_small(size):
                problems.append(
                    f"{pair.a.relative_to(where)} ({size[0]}x{size[1]}, smaller than "
                    f"data.crop_size={self.crop_size})"
                )
            else:
                self._pair_sizes[pair.a] = size
                pairs.append(pair)
        if problems:
            raise DataError(
                f"{len(problems)} file(s) in {where} cannot be used "
                f"(data.layout={layout.name}): {listed(problems)}"
            )
        if found.ignored:
            rank_zero_info(
                f"{where}: ignored {len(found.ignored)} hidden or non-image file(s): "
                f"{listed([str(p.relative_to(where)) for p in found.ignored], 3)}"
            )
        return pairs

    def _split_partition(self) -> dict[str, list[Pair]]:
        """The training and test pairs drawn from ``root`` by ``test_fraction``/``test_list``."""
        if self._partition is not None:
            return self._partition
        if not self.root.is_dir():
            raise self._missing_train_error()
        pairs = self._found_pairs(self.pair_layout.find(self.root), self.root)
        if self.test_list is not None:
            is_test = self._listed_for_test(pairs)
        else:
            count = min(max(1, round(self.test_fraction * len(pairs))), len(pairs) - 1)
            if count < 1:
                raise DataError(
                    f"data.root={self.root} holds {len(pairs)} pair(s); data.test_fraction "
                    "needs at least 2 to draw a test split"
                )
            order = np.random.default_rng(self.seed).permutation(len(pairs))
            chosen = set(order[:count].tolist())
            is_test = [i in chosen for i in range(len(pairs))]
        self._partition = {
            self.train_split: [p for p, test in zip(pairs, is_test, strict=True) if not test],
            self.test_split: [p for p, test in zip(pairs, is_test, strict=True) if test],
        }
        return self._partition

    def _listed_for_test(self, pairs: list[Pair]) -> list[bool]:
        try:
            lines = self.test_list.read_text().splitlines()
        except OSError as err:
            raise DataError(f"cannot read data.test_list={self.test_list}: {err}") from err
        names = {str(Path(line.strip()).with_suffix("")) for line in lines if line.strip()}
        keys = [str(Path(pair.key).with_suffix("")) for pair in pairs]
        by_name = {Path(key).name for key in keys}
        unknown = sorted(n for n in names if n not in keys and Path(n).name not in by_name)
        if unknown:
            raise DataError(
                f"{len(unknown)} name(s) in data.test_list={self.test_list} match no pair of "
                f"data.root={self.root}: {listed(unknown)}"
            )
        is_test = [key in names or Path(key).name in names for key in keys]
        if all(is_test):
            raise DataError(
                f"data.test_list={self.test_list} names every pair of data.root={self.root}; "
                "leave some for training"
            )
        return is_test

    def _pairs(self, split: str, key: str) -> list[Pair]:
        """The checked pairs of ``split`` (``key`` names the setting that chose it)."""
        if self._one_folder:
            partition = self._split_partition()
            if split not in partition:
                raise DataError(
                    f"{key}={split!r}: with data.test_fraction or data.test_list the splits "
                    f"are '{self.train_split}' and '{self.test_split}'"
                )
            return partition[split]
        folder = self.root / split
        if not folder.is_dir() and (split == self.train_split or not self.root.is_dir()):
            raise self._missing_train_error()
        if not folder.is_dir():
            found = sorted(f"{child.name}/" for child in self.root.iterdir() if child.is_dir())
            raise DataError(
                f"data.root={self.root} has no '{split}/' folder (found: {', '.join(found)}); "
                f"set {key} to another split folder, or data.val_fallback=N (e.g. 20) to hold "
                f"N of the '{self.train_split}/' images out for validation"
            )
        return self._found_pairs(self.pair_layout.find(folder), folder)

    def has_split(self, split: str) -> bool:
        """Whether ``split`` exists: a split folder, or a split drawn from the one folder."""
        if self._one_folder:
            return split in (self.train_split, self.test_split)
        return (self.root / split).is_dir()

    def _train_and_val_pairs(self) -> tuple[list[Pair], list[Pair]]:
        train = self._pairs(self.train_split, "data.train_split")
        if not self._one_folder and self.has_split(self.val_split):
            return train, self._pairs(self.val_split, "data.val_split")
        fallback = self.val_fallback
        if isinstance(fallback, str):
            val = self._pairs(fallback, "data.val_fallback")
            choice = f"validating on '{fallback}/' instead"
        else:
            if fallback >= len(train):
                raise ConfigError(
                    f"data.val_fallback={fallback} would hold out all {len(train)} training "
                    f"pairs of data.root={self.root}; use fewer than {len(train)}"
                )
            order = np.random.default_rng(self.seed).permutation(len(train))
            held_out = set(order[:fallback].tolist())
            val = [pair for i, pair in enumerate(train) if i in held_out]
            train = [pair for i, pair in enumerate(train) if i not in held_out]
            choice = (
                f"holding out {fallback} of its '{self.train_split}' pairs for validation "
                f"(data.seed={self.seed})"
            )
        rank_zero_warn(
            f"data.root={self.root} has no '{self.val_split}/' folder; {choice} "
            f"(data.val_fallback={fallback!r}; an int N holds N training pairs out)"
        )
        return train, val

    # -- transforms and sizes --------------------------------------------------------
    def _multiple(self) -> int:
        """``size_multiple``, else the generator's when a Trainer runs this module."""
        if self.size_multiple is not None:
            return self.size_multiple
        module = self.trainer.lightning_module if self.trainer is not None else None
        if module is None or not hasattr(module, "translation_network"):
            return 1
        rule = size_rule(module.translation_network())
        if self.preprocess in FIXED_SIZE_MODES and self.crop_size % rule.multiple:
            raise ConfigError(
                f"data.crop_size={self.crop_size} is not a multiple of {rule.multiple}, which "
                f"the generator ({type(module.translation_network()).__name__}) needs; use "
                f"e.g. {max(1, round(self.crop_size / rule.multiple)) * rule.multiple}"
            )
        return rule.multiple

    def _transform(self, train: bool) -> PairTransform:
        flip = self.flip and train
        preprocess = Preprocess(
            self.preprocess, self.load_size, self.crop_size, flip, self._multiple()
        )
        return PairTransform(preprocess, train, self.augment)

    def _dataset(self, pairs: list[Pair], train: bool) -> PairedImageDataset:
        dataset = PairedImageDataset(
            pairs, self._transform(train), self.direction, self.pair_layout, self.channels
        )
        if train:
            self._check_batchable(dataset)
        return dataset

    def sample_sizes(self, dataset: PairedImageDataset, train: bool) -> list[Size]:
        """The (width, height) of each sample of ``dataset`` after preprocessing."""
        preprocess = dataset.transform.preprocess
        return [preprocess.output_size(self._pair_sizes[pair.a], train) for pair in dataset.pairs]

    def _check_batchable(self, train_set: PairedImageDataset) -> None:
        # Evaluation batches are bucketed by size (SizeBatches); training batches are not,
        # as the resumable sampler counts its position in samples of one shuffled order.
        if self.batch_size == 1 or self.preprocess in FIXED_SIZE_MODES:
            return
        sizes = Counter(self.sample_sizes(train_set, train=True))
        if len(sizes) > 1:
            common = [f"{w}x{h} ({n})" for (w, h), n in sizes.most_common()]
            raise ConfigError(
                f"data.batch_size={self.batch_size} with data.preprocess={self.preprocess}: the samples "
                f"come in {len(sizes)} sizes ({listed(common, 4)}) and a batch holds one size; "
                "use batch size 1, or a mode with a fixed size (resize_and_crop, "
                "scale_width_and_crop, crop)"
            )

    # -- LightningDataModule ---------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Scan the splits needed for ``stage`` (all of them when ``None``)."""
        if stage in (None, "fit", "validate") and self.train_set is None:
            train, val = self._train_and_val_pairs()
            self.train_set = self._dataset(train, True)
            self.val_set = self._dataset(val, False)
            rank_zero_info(f"data: {len(train)} training and {len(val)} validation pairs")
        if stage in (None, "test", "predict") and self.test_set is None:
            test = self._pairs(self.test_split, "data.test_split")
            self.test_set = self._dataset(test, False)
            rank_zero_info(f"data: {len(test)} test pairs")

    def _loader(
        self,
        dataset: Dataset | None,
        batch_size: int,
        sampler: ResumableRandomSampler | None = None,
        batch_sampler: SizeBatches | None = None,
    ) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its dataloaders")
        batching: dict[str, Any] = (
            {"batch_sampler": batch_sampler}
            if batch_sampler is not None
            else {"batch_size": batch_size, "sampler": sampler}
        )
        return DataLoader(
            dataset,
            **batching,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            # Worker seeds from a private generator: creating the loader's iterator (again,
            # after a resume) must not consume the global generators.
            generator=torch.Generator().manual_seed(self.shuffle_seed),
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, augmented training batches (order and crops resumable mid-epoch)."""
        if self.train_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its dataloaders")
        # Under data parallelism each process draws its own share of the epoch's order (the
        # ddp trainer configs set use_distributed_sampler=false, so Lightning leaves it alone).
        trainer = self.trainer
        self._sampler = ResumableRandomSampler(
            len(self.train_set),
            self.shuffle_seed,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )
        if self._sampler_state is not None:
            self._sampler.load_state_dict(self._sampler_state)
        return self._loader(self.train_set, self.batch_size, self._sampler)

    def _eval_loader(self, dataset: Dataset | None) -> DataLoader:
        """Batches of ``val_batch_size``, bucketed by size when samples keep their own sizes."""
        if (
            not isinstance(dataset, PairedImageDataset)
            or self.val_batch_size == 1
            or self.preprocess in FIXED_SIZE_MODES
        ):
            return self._loader(dataset, self.val_batch_size)
        batches = SizeBatches(self.sample_sizes(dataset, train=False), self.val_batch_size)
        return self._loader(dataset, self.val_batch_size, batch_sampler=batches)

    def val_dataloader(self) -> DataLoader:
        """Validation batches (from the fallback when there is no val split)."""
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        """Test batches."""
        return self._eval_loader(self.test_set)

    def state_dict(self) -> dict[str, Any]:
        """Where the training sampler stands, saved in checkpoints by Lightning."""
        if self._sampler is None or self.trainer is None:
            return {}
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.completed
        return {"sampler": self._sampler.state_dict(consumed=done * self.batch_size)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._sampler_state = state_dict.get("sampler")
        if self._sampler is not None and self._sampler_state is not None:
            self._sampler.load_state_dict(self._sampler_state)

    def predict_dataloader(self) -> DataLoader:
        """The test batches, for ``Trainer.predict``."""
        return self.test_dataloader()

    def sample_val_batch(self, n: int) -> dict[str, Any]:
        """The first ``n`` validation pairs (fewer if the split is smaller), collated.

        Always the same pairs, for image grids that can be compared across epochs; with
        samples of several sizes, the first ``n`` of the first sample's size.
        """
        if self.val_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup('fit') must run before sampling")
        if n < 1:
            raise ValueError(f"n={n} must be a positive number of validation pairs")
        samples = []
        for index in range(len(self.val_set)):
            sample = self.val_set[index]
            if samples and sample["A"].shape != samples[0]["A"].shape:
                continue
            samples.append(sample)
            if len(samples) == n:
                break
        return default_collate(samples)
