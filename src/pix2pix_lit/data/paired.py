"""Aligned A/B image pairs stored side by side, in the pix2pix dataset layout.

A dataset folder holds ``train/``, ``val/`` and ``test/`` (any may be renamed); each image in
them is the A image and the B image concatenated horizontally, so it is twice as wide as high.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset, default_collate

from pix2pix_lit.data.download import fetch_dataset, preparing
from pix2pix_lit.data.io import IMAGE_EXTENSIONS, image_size, list_images, read_rgb
from pix2pix_lit.data.sampling import ResumableRandomSampler
from pix2pix_lit.data.transforms import eval_transform, train_transform
from pix2pix_lit.errors import ConfigError, DataError

DIRECTIONS: tuple[str, ...] = ("AtoB", "BtoA")
_MAX_LISTED_FILES = 10

PairTransformFn = Callable[[np.ndarray, np.ndarray], tuple[torch.Tensor, torch.Tensor]]


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ConfigError(
            f"data.direction={direction!r} is not valid; use one of {', '.join(DIRECTIONS)}"
        )


def split_pair(ab: np.ndarray, direction: str = "AtoB") -> tuple[np.ndarray, np.ndarray]:
    """Split an ``H x 2H`` A|B image into ``(input, target)`` halves.

    With ``direction="BtoA"`` the right half is returned first, so callers always get the
    model input first whichever way the dataset is stored.
    """
    _check_direction(direction)
    half = ab.shape[1] // 2
    left = np.ascontiguousarray(ab[:, :half])
    right = np.ascontiguousarray(ab[:, half : 2 * half])
    return (left, right) if direction == "AtoB" else (right, left)


def scan_split(folder: Path, decode: bool = True) -> list[Path]:
    """List a split's A|B images, checking each for the width = 2 x height layout.

    ``decode`` reads every file whole (about 1 ms per 512x256 JPEG), so truncated or corrupt
    files are found before training rather than mid-epoch; otherwise only headers are read.
    All offending files are reported in one error, so a broken dataset is fixed in one pass.
    """
    paths = list_images(folder)
    if not paths:
        raise DataError(
            f"{folder} contains no images; put the split's A|B images there as "
            f"{', '.join(IMAGE_EXTENSIONS)} files"
        )
    problems = []
    for path in paths:
        try:
            width, height = image_size(path, decode=decode)
        except DataError as err:
            problems.append(f"{path.name} (unreadable: {err.__cause__ or err})")
            continue
        if width != 2 * height:
            problems.append(f"{path.name} ({width}x{height})")
    if problems:
        listed = ", ".join(problems[:_MAX_LISTED_FILES])
        more = len(problems) - _MAX_LISTED_FILES
        listed += f" and {more} more" if more > 0 else ""
        raise DataError(
            f"{len(problems)} file(s) in {folder} are not readable A|B pairs with "
            f"width = 2 x height: {listed}"
        )
    return paths


class PairedImageDataset(Dataset):
    """Aligned pairs read from A|B images, as ``{"A", "B", "A_path"}`` samples.

    ``A`` is always the model input and ``B`` the target (``direction="BtoA"`` swaps the
    halves); ``A_path`` is the path of the A|B file. ``transform`` maps the two HWC uint8 halves
    to tensors, applying any random draw to both.
    """

    def __init__(
        self, paths: Sequence[Path], transform: PairTransformFn, direction: str = "AtoB"
    ) -> None:
        _check_direction(direction)
        self.paths = list(paths)
        self.transform = transform
        self.direction = direction

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        """Sample ``index``, or ``(index, seed)`` to fix the augmentation's random draw."""
        index, seed = index if isinstance(index, tuple) else (index, None)
        path = self.paths[index]
        a, b = self.transform(*split_pair(read_rgb(path), self.direction), seed=seed)
        return {"A": a, "B": b, "A_path": str(path)}


class PairedImageDataModule(LightningDataModule):
    """Train/val/test loaders over a pix2pix-layout dataset of A|B images.

    Defaults follow the paper's facades recipe (resize to 286, random 256 crop, random flip,
    batch size 1). Batches are ``{"A": [N,3,crop,crop], "B": same, "A_path": list[str]}`` with
    values in [-1, 1]; ``A`` is the input and ``B`` the target for either ``direction``.

    Args:
        root: the dataset folder (holding the split folders); relative to the current directory.
        direction: ``"AtoB"`` or ``"BtoA"`` (the right half is the input).
        load_size: side the training images are resized to before cropping.
        crop_size: side of the training crops and of the resized val/test images.
        flip: random horizontal flips in training.
        batch_size: training batch size.
        val_batch_size: val/test/predict batch size (default: ``batch_size``).
        num_workers: DataLoader worker processes.
        pin_memory: pin batches in page-locked memory (only when CUDA is available).
        persistent_workers: keep workers alive between epochs (only when ``num_workers > 0``).
        train_split, val_split, test_split: split folder names under ``root``.
        val_fallback: when ``root`` has no ``val_split`` folder, a split name to validate on
            instead, or an int N to hold N training images out (chosen by ``seed``).
        url: http(s):// or file:// archive to fetch when ``root`` has no ``train_split`` folder.
        sha256: the archive's checksum, verified when given.
        expected_counts: images per split the archive must contain, checked after extraction.
        download: allow :meth:`prepare_data` to fetch ``url``.
        seed: seed of the held-out validation split.
        verify_images: decode every image when scanning the splits, to report truncated or
            corrupt files (with all other problems) before training starts.
    """

    def __init__(
        self,
        root: str | Path,
        *,
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
        url: str | None = None,
        sha256: str | None = None,
        expected_counts: Mapping[str, int] | None = None,
        download: bool = True,
        seed: int = 0,
        verify_images: bool = True,
    ) -> None:
        super().__init__()
        _check_direction(direction)
        self._train_transform = train_transform(load_size, crop_size, flip)
        self._eval_transform = eval_transform(crop_size)
        for key, value in (("batch_size", batch_size), ("val_batch_size", val_batch_size)):
            if value is not None and value < 1:
                raise ConfigError(f"data.{key}={value} must be a positive integer")
        if num_workers < 0:
            raise ConfigError(f"data.num_workers={num_workers} must be 0 or more")
        # bool is an int subclass, but "val_fallback: true" is surely a typo, not "hold out 1".
        if (
            isinstance(val_fallback, bool)
            or not isinstance(val_fallback, (str, int))
            or (isinstance(val_fallback, int) and val_fallback < 1)
        ):
            raise ConfigError(
                f"data.val_fallback={val_fallback!r} is not valid; use a split folder name "
                "(e.g. 'test') or a positive int N to hold N training images out"
            )
        self.root = Path(root).expanduser().resolve()
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
        self.url = url
        self.sha256 = sha256
        self.expected_counts = None if expected_counts is None else dict(expected_counts)
        self.download = download
        self.seed = seed
        self.verify_images = verify_images
        # Drawn from the global generator once, so seed_everything fixes every epoch's order.
        self.shuffle_seed = int(torch.randint(0, 2**31 - 1, ()).item())
        self._sampler: ResumableRandomSampler | None = None
        self._sampler_state: dict[str, Any] | None = None
        self.train_set: PairedImageDataset | None = None
        self.val_set: PairedImageDataset | None = None
        self.test_set: PairedImageDataset | None = None

    def _missing_train_error(self) -> DataError:
        what = (
            f"data.root={self.root} does not exist"
            if not self.root.exists()
            else f"data.root={self.root} exists"
        )
        what += f" (no '{self.train_split}/' folder)"
        layout = (
            f"point data.root at a folder with {self.train_split}/ "
            f"(and {self.val_split}/, {self.test_split}/)"
        )
        if not self.url:
            return DataError(f"{what} and no data.url to download it from; {layout}")
        if not self.download:
            return DataError(
                f"{what} and data.download=false; set data.download=true to fetch "
                f"data.url={self.url}, or {layout}"
            )
        return DataError(f"{what}; call prepare_data() (the Trainer does) to fetch data.url")

    def prepare_data(self) -> None:
        """Download and extract ``url`` into ``root`` when ``root`` has no train split."""
        if (self.root / self.train_split).is_dir():
            return
        if not (self.url and self.download):
            raise self._missing_train_error()
        self._create_once(
            lambda: (self.root / self.train_split).is_dir(), lambda: self._fetch(self.train_split)
        )

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

    def _scan(self, split: str, key: str) -> list[Path]:
        folder = self.root / split
        if not folder.is_dir() and (split == self.train_split or not self.root.is_dir()):
            raise self._missing_train_error()
        if not folder.is_dir():
            found = sorted(f"{child.name}/" for child in self.root.iterdir() if child.is_dir())
            raise DataError(
                f"data.root={self.root} has no '{split}/' folder (found: {', '.join(found)}); "
                f"set {key} to one of those or add the folder"
            )
        return scan_split(folder, decode=self.verify_images)

    def _train_and_val_paths(self) -> tuple[list[Path], list[Path]]:
        train = self._scan(self.train_split, "data.train_split")
        if (self.root / self.val_split).is_dir():
            return train, self._scan(self.val_split, "data.val_split")
        fallback = self.val_fallback
        if isinstance(fallback, str):
            val = self._scan(fallback, "data.val_fallback")
            choice = f"validating on '{fallback}/' instead"
        else:
            if fallback >= len(train):
                raise ConfigError(
                    f"data.val_fallback={fallback} would hold out all {len(train)} images of "
                    f"{self.root / self.train_split}; use fewer than {len(train)}"
                )
            order = np.random.default_rng(self.seed).permutation(len(train))
            held_out = set(order[:fallback].tolist())
            val = [path for i, path in enumerate(train) if i in held_out]
            train = [path for i, path in enumerate(train) if i not in held_out]
            choice = (
                f"holding out {fallback} of its '{self.train_split}/' images for validation "
                f"(data.seed={self.seed})"
            )
        rank_zero_warn(
            f"data.root={self.root} has no '{self.val_split}/' folder; {choice} "
            f"(data.val_fallback={fallback!r})"
        )
        return train, val

    def setup(self, stage: str | None = None) -> None:
        """Scan the split folders needed for ``stage`` (all of them when ``None``)."""
        if stage in (None, "fit", "validate") and self.train_set is None:
            train, val = self._train_and_val_paths()
            self.train_set = PairedImageDataset(train, self._train_transform, self.direction)
            self.val_set = PairedImageDataset(val, self._eval_transform, self.direction)
        if stage in (None, "test", "predict") and self.test_set is None:
            test = self._scan(self.test_split, "data.test_split")
            self.test_set = PairedImageDataset(test, self._eval_transform, self.direction)

    def _loader(
        self,
        dataset: PairedImageDataset | None,
        batch_size: int,
        sampler: ResumableRandomSampler | None = None,
    ) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its dataloaders")
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
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

    def val_dataloader(self) -> DataLoader:
        """Validation batches (from the fallback when there is no val split)."""
        return self._loader(self.val_set, self.val_batch_size)

    def test_dataloader(self) -> DataLoader:
        """Test batches."""
        return self._loader(self.test_set, self.val_batch_size)

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

        Always the same pairs, for image grids that can be compared across epochs.
        """
        if self.val_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup('fit') must run before sampling")
        if n < 1:
            raise ValueError(f"n={n} must be a positive number of validation pairs")
        return default_collate([self.val_set[i] for i in range(min(n, len(self.val_set)))])
