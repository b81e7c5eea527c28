"""Labelled 32x32 digit images of two domains, for the Domain Transfer Network (DTN).

Taigman et al. (2017, section 5.1) transfer SVHN (source S: colour house numbers) to MNIST
(target T: handwriting). Neither can be downloaded here, so both domains are made on the spot
and cached under ``root`` as ``<split>.npz`` (``images``: uint8 ``(N, C, H, W)``, ``labels``):

* :class:`SyntheticDigitsDataModule` (S): digits rendered from fonts (:mod:`.digit_rendering`);
* :class:`UCIDigitsDataModule` (T): the 1,797 UCI handwritten digits of 8x8 pixels that ship
  inside scikit-learn (``sklearn.datasets.load_digits``), upsampled, split with a seed.

Both serve ``{"image", "label"}`` batches in [-1, 1] for the classifiers (f on S, the evaluator
C_T on T); :class:`DigitTransferDataModule` serves the two together for DTN training.
Validation uses the test split (the digit sets have no separate validation split).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from pix2pix_lit.data.digit_rendering import available_fonts, render_digits
from pix2pix_lit.data.paired import PairedImageDataModule
from pix2pix_lit.errors import ConfigError, DataError

SPLITS: tuple[str, ...] = ("train", "test")
CHANNELS: tuple[int, ...] = (1, 3)
MIN_IMAGE_SIZE = 8
NUM_CLASSES = 10
_META_FILE = "meta.json"
_HALF_RANGE = 127.5


def to_signed(images: Tensor) -> Tensor:
    """uint8 images → float in [-1, 1]."""
    return images.float().sub_(_HALF_RANGE).div_(_HALF_RANGE)


def set_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """``(N, C, H, W)`` uint8 images with ``channels`` channels: RGB → grey by ITU-R 601 luma,
    grey → RGB by repeating it."""
    if images.shape[1] == channels:
        return images
    if channels == 1:
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 3, 1, 1)
        return (images * weights).sum(1, keepdims=True).round().astype(np.uint8)
    return np.repeat(images, channels, axis=1)


class DigitsDataset(Dataset):
    """Labelled images as ``{"image": (C, H, W) in [-1, 1], "label": int}`` samples.

    Indexable by ``(index, seed)`` as the resumable training sampler does; digits are not
    augmented (nor in the paper), so the seed is unused.
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images for {len(labels)} labels")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index = item[0] if isinstance(item, tuple) else item
        return {"image": to_signed(self.images[index]), "label": int(self.labels[index])}


class DigitsDataModule(PairedImageDataModule):
    """Train/test loaders of a generated digit set cached at ``root`` (val = test split).

    Subclasses say how the splits are made (:meth:`generate`) and with which settings
    (:meth:`settings`); the first job to need the set generates it under a lock beside ``root``
    (parallel jobs of a sweep wait and then load it) and later runs load the cache. A cache made
    with other settings is refused, naming ``data.root``. Batches: ``{"image": (N, C, H, W) in
    [-1, 1], "label": (N,)}``; loaders, batch sizes, workers and the resumable sampler are
    those of :class:`PairedImageDataModule`.

    Args:
        root: the cache folder (``<split>.npz`` and ``meta.json``).
        image_size: side of the images.
        channels: 3 (RGB) or 1 (grey; RGB sets are converted by luma, grey ones repeated to 3).
        seed: seeds the generation (and the train/test split).
        **kwargs: ``batch_size``, ``val_batch_size``, ``num_workers``, ``pin_memory``,
            ``persistent_workers`` of :class:`PairedImageDataModule`.
    """

    #: what the data are, in messages
    name = "digits"

    def __init__(
        self, root: str | Path, *, image_size: int = 32, channels: int = 3, seed: int = 0, **kwargs
    ) -> None:
        super().__init__(
            root, load_size=image_size, crop_size=image_size, flip=False, seed=seed, **kwargs
        )
        if image_size < MIN_IMAGE_SIZE:
            raise ConfigError(f"data.image_size={image_size} must be >= {MIN_IMAGE_SIZE}")
        if channels not in CHANNELS:
            raise ConfigError(f"data.channels={channels} must be one of {CHANNELS}")
        self.image_size = image_size
        self.channels = channels

    # -- what a digit set defines ------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """What the cached set depends on (stored in ``meta.json`` and compared)."""
        return {"name": self.name, "image_size": self.image_size, "seed": self.seed}

    def generate(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Split name → (images ``(N, C, H, W)`` uint8, labels ``(N,)`` int64)."""
        raise NotImplementedError

    # -- the cache ---------------------------------------------------------------------
    def _cached(self) -> bool:
        return (self.root / _META_FILE).is_file()

    def prepare_data(self) -> None:
        """Generate and cache the set unless it is at ``root`` already."""
        if not self._cached():
            self._create_once(self._cached, self._write_cache)
        stored = json.loads((self.root / _META_FILE).read_text())
        if stored["settings"] != self.settings():
            raise DataError(
                f"data.root={self.root} holds {stored['settings']['name']} generated with "
                f"{stored['settings']}, not {self.settings()}; choose another data.root or "
                "delete that folder"
            )

    def _write_cache(self) -> None:
        splits = self.generate()
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{self.root.name}-", dir=self.root.parent) as tmp:
            staging = Path(tmp) / self.root.name
            staging.mkdir()
            for split, (images, labels) in splits.items():
                np.savez(staging / f"{split}.npz", images=images, labels=labels)
            counts = {split: len(labels) for split, (_, labels) in splits.items()}
            meta = {"settings": self.settings(), "counts": counts, "fonts": available_fonts()}
            # meta.json last: its presence marks a complete cache
            (staging / _META_FILE).write_text(json.dumps(meta, indent=2))
            if self.root.exists():
                raise DataError(
                    f"data.root={self.root} exists but holds no {_META_FILE}; remove it or "
                    "choose another data.root"
                )
            os.replace(staging, self.root)

    def load_split(self, split: str) -> DigitsDataset:
        """The cached ``split`` with :attr:`channels` channels."""
        path = self.root / f"{split}.npz"
        if not path.is_file():
            raise DataError(f"{path} is missing; call prepare_data() (the Trainer does)")
        with np.load(path) as stored:
            images, labels = set_channels(stored["images"], self.channels), stored["labels"]
        return DigitsDataset(torch.from_numpy(images), torch.from_numpy(labels))

    def setup(self, stage: str | None = None) -> None:
        """Load the splits needed for ``stage`` (all of them when ``None``)."""
        if stage in (None, "fit", "validate") and self.train_set is None:
            self.train_set = self.load_split("train")
            self.val_set = self.load_split("test")
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self.load_split("test")


def _check_counts(counts: dict[str, int]) -> dict[str, int]:
    counts = dict(counts)
    if set(counts) != set(SPLITS) or not all(isinstance(n, int) and n > 0 for n in counts.values()):
        raise ConfigError(
            f"data.num_images={counts} must give a positive count for each of {', '.join(SPLITS)}"
        )
    return counts


class SyntheticDigitsDataModule(DigitsDataModule):
    """Source domain S: colour digits rendered from fonts, the SVHN stand-in (see
    :mod:`.digit_rendering`); ``num_images`` per split, balanced over the ten classes."""

    name = "synthetic_digits"

    def __init__(
        self, root: str | Path, *, num_images: dict[str, int] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(root, **kwargs)
        self.num_images = _check_counts(num_images or {"train": 20000, "test": 2000})

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "num_images": self.num_images}

    def generate(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        splits = {}
        for offset, split in enumerate(SPLITS):
            # one stream per split: a larger train split leaves the test images unchanged
            images, labels = render_digits(
                self.num_images[split], self.image_size, seed=self.seed * len(SPLITS) + offset
            )
            splits[split] = (images.transpose(0, 3, 1, 2).copy(), labels)
        return splits


class UCIDigitsDataModule(DigitsDataModule):
    """Target domain T: the UCI handwritten digits shipped with scikit-learn (1,797 images of
    8x8 pixels, ink bright on dark like MNIST), bilinearly upsampled to ``image_size`` and
    split at random (``seed``) with ``test_fraction`` of the images held out."""

    name = "uci_digits"

    def __init__(self, root: str | Path, *, test_fraction: float = 0.2, **kwargs: Any) -> None:
        kwargs.setdefault("channels", 1)
        super().__init__(root, **kwargs)
        if not 0 < test_fraction < 1:
            raise ConfigError(f"data.test_fraction={test_fraction} must be in (0, 1)")
        self.test_fraction = test_fraction

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "test_fraction": self.test_fraction}

    def generate(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        try:
            from sklearn.datasets import load_digits
        except ImportError as err:
            raise ConfigError(
                "data=uci_digits needs scikit-learn: pip install 'pix2pix-lit[digits]'"
            ) from err
        digits = load_digits()
        small = torch.from_numpy(digits.images).float().unsqueeze(1) * (255 / 16)
        large = F.interpolate(small, size=self.image_size, mode="bilinear", align_corners=False)
        images = large.clamp(0, 255).round().to(torch.uint8).numpy()
        labels = digits.target.astype(np.int64)
        order = np.random.default_rng(self.seed).permutation(len(labels))
        n_test = round(len(labels) * self.test_fraction)
        test, train = order[:n_test], order[n_test:]
        return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}
