"""Unpaired images of two domains A and B, for cycle-consistent translation (CycleGAN, U-GAT-IT).

Layouts served:

* ``cyclegan``: the layout of CycleGAN's datasets (Zhu et al. 2017): ``root/trainA``,
  ``trainB``, ``testA``, ``testB`` (``valA``/``valB`` when present) holding images of any size.
* ``aligned`` (= ``combined``) or ``separate``: a paired dataset (A|B images, or A and B
  folders, see :mod:`~pix2pix_lit.data.layouts`) whose training inputs and targets are served
  as two independent domains; its validation and test splits stay paired, so the paired
  metrics (val/L1, PSNR, SSIM) compare directly with pix2pix on the same data.

Each training A image is shown with a B image drawn at random every time (``serial=True``: the
B image of the same index), and A and B are augmented independently of each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import Dataset

from pix2pix_lit.data.io import read_image
from pix2pix_lit.data.layouts import SingleImages
from pix2pix_lit.data.paired import PairedImageDataModule
from pix2pix_lit.data.paired_dataset import PairedImageDataset
from pix2pix_lit.data.synthetic import SyntheticPairedDataModule
from pix2pix_lit.data.transforms import FIXED_SIZE_MODES, PairTransform
from pix2pix_lit.errors import ConfigError, DataError

LAYOUTS: tuple[str, ...] = ("cyclegan", "aligned", "combined", "separate")
SINGLE_IMAGES = SingleImages()


@dataclass(frozen=True)
class DomainImages:
    """The images of one domain: their files, and how to read image i as H x W x C uint8."""

    paths: list[Path]
    read: Callable[[int], np.ndarray]


@dataclass(frozen=True)
class ImageFiles:
    """Reads image i of ``paths`` with ``channels`` channels."""

    paths: list[Path]
    channels: int

    def __call__(self, index: int) -> np.ndarray:
        return read_image(self.paths[index], self.channels)


@dataclass(frozen=True)
class PairSide:
    """Reads side ``side`` (0: the input, 1: the target) of pair i of a paired dataset."""

    pairs: PairedImageDataset
    side: int

    def __call__(self, index: int) -> np.ndarray:
        return self.pairs.read(index)[self.side]


class UnpairedImageDataset(Dataset):
    """Samples ``{"A", "B", "A_path", "B_path"}`` of two unaligned domains.

    The length is max(|A|, |B|); sample i holds A image i mod |A| and, with ``serial=False``,
    a B image drawn uniformly at each access (so every epoch pairs differently), with
    ``serial=True`` B image i mod |B|. ``transform`` augments A and B with separate random
    draws. The draws come from the sample's seed when it is indexed by ``(index, seed)`` (as
    the training sampler does, for exact resumes), otherwise from torch's global generator.
    """

    def __init__(
        self, a: DomainImages, b: DomainImages, transform: PairTransform, serial: bool = False
    ) -> None:
        self.a = a
        self.b = b
        self.transform = transform
        self.serial = serial

    def __len__(self) -> int:
        return max(len(self.a.paths), len(self.b.paths))

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        """Sample ``index``, or ``(index, seed)`` to fix its random draws."""
        index, seed = index if isinstance(index, tuple) else (index, None)
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        index_a = index % len(self.a.paths)
        if self.serial:
            index_b = index % len(self.b.paths)
        else:
            index_b = int(torch.randint(len(self.b.paths), (), generator=generator))
        path_a, path_b = self.a.paths[index_a], self.b.paths[index_b]
        seed_a, seed_b = torch.randint(0, 2**62, (2,), generator=generator).tolist()
        return {
            "A": self._augment(self.a.read(index_a), seed_a),
            "B": self._augment(self.b.read(index_b), seed_b),
            "A_path": str(path_a),
            "B_path": str(path_b),
        }

    def _augment(self, image: np.ndarray, seed: int) -> torch.Tensor:
        # A PairTransform makes one random draw per call for both of its images; given one
        # image twice, each domain gets its own draw (and the images may differ in size).
        return self.transform(image, image, seed=seed)[0]


class UnpairedImageDataModule(PairedImageDataModule):
    """Train/val/test loaders of unpaired A and B images, in any of :data:`LAYOUTS`.

    Batches are ``{"A": [N,C_in,H,W], "B": [N,C_out,H,W], "A_path", "B_path": list[str]}`` in
    [-1, 1]; ``direction="BtoA"`` swaps the domains (the B folder, or the right half, is A).
    Training samples are preprocessed as in the paired module (``data.preprocess``), with
    separate draws for A and B.

    Validation and test: with a paired layout (``aligned``/``combined`` A|B images, or
    ``separate`` folders) the split's aligned pairs (``{"A", "B", "A_path"}``, exactly as
    :class:`PairedImageDataModule` serves them); with ``layout="cyclegan"`` the split's A and
    B images paired by index, so the paired metrics mean nothing there (image grids and
    checkpoints work as usual). Without ``valA``/``valB`` the ``val_fallback`` split is used
    (a split name; holding images out needs a paired layout).

    Args:
        root: the dataset folder.
        layout: ``"cyclegan"`` (``trainA/``, ``trainB/``, ...), ``"aligned"`` (the same as
            ``"combined"``: A|B images) or ``"separate"`` (A and B folders of pairs).
        serial: pair training images by index instead of drawing B at random.
        **kwargs: any :class:`PairedImageDataModule` argument (``url``, ``expected_counts``
            and the split names apply to the ``<split>A``/``<split>B`` folders of the
            ``cyclegan`` layout).
    """

    def __init__(
        self, root: str | Path, *, layout: str = "cyclegan", serial: bool = False, **kwargs: Any
    ) -> None:
        if layout not in LAYOUTS:
            raise ConfigError(
                f"data.layout={layout!r} is not valid; use one of {', '.join(LAYOUTS)}"
            )
        pair_layout = "separate" if layout == "separate" else "combined"
        super().__init__(root, layout=pair_layout, **kwargs)
        if layout == "cyclegan" and not isinstance(self.val_fallback, str):
            raise ConfigError(
                f"data.val_fallback={self.val_fallback!r} holds training images out, which "
                "needs a paired layout (data.layout=aligned or separate); with "
                "layout=cyclegan name a split (e.g. 'test')"
            )
        self.layout = layout
        self.serial = serial

    # -- the cyclegan layout ---------------------------------------------------------
    def _domain_folders(self, split: str) -> tuple[Path, Path]:
        """The folders of the A and B images of ``split``, after ``direction``."""
        a, b = self.root / f"{split}A", self.root / f"{split}B"
        return (a, b) if self.direction == "AtoB" else (b, a)

    def _has_domain_split(self, split: str) -> bool:
        return all(folder.is_dir() for folder in self._domain_folders(split))

    def has_split(self, split: str) -> bool:
        if self.layout == "cyclegan":
            return self._has_domain_split(split)
        return super().has_split(split)

    def _split_error(self, split: str, key: str) -> DataError:
        if self.root.is_dir():
            found = sorted(f"{child.name}/" for child in self.root.iterdir() if child.is_dir())
            state = f"holds {', '.join(found) or 'no folders'}"
        else:
            state = "does not exist"
        fetch = (
            " or data.download=true to fetch data.url," if self.url and not self.download else ""
        )
        return DataError(
            f"data.root={self.root} {state}; data.layout=cyclegan needs {split}A/ and {split}B/ "
            f"image folders there (set {key},{fetch} or data.layout=aligned for A|B images)"
        )

    def _domain(self, folder: Path, channels: int) -> DomainImages:
        images = self.splits.checked_pairs(SINGLE_IMAGES.find(folder), folder, SINGLE_IMAGES)
        paths = [image.a for image in images]
        return DomainImages(paths, ImageFiles(paths, channels))

    def _unpaired_split(self, split: str, key: str, train: bool) -> UnpairedImageDataset:
        if not self._has_domain_split(split):
            raise self._split_error(split, key)
        folder_a, folder_b = self._domain_folders(split)
        a, b = self._domain(folder_a, self.channels[0]), self._domain(folder_b, self.channels[1])
        batch_key = "batch_size" if train else "val_batch_size"
        if self.preprocess not in FIXED_SIZE_MODES and getattr(self, batch_key) > 1:
            raise ConfigError(
                f"data.{batch_key}={getattr(self, batch_key)} with data.preprocess="
                f"{self.preprocess} and data.layout=cyclegan: images of any size cannot be "
                "batched; use batch size 1 or a mode with a fixed size (resize_and_crop, "
                "scale_width_and_crop, crop)"
            )
        serial = self.serial if train else True
        return UnpairedImageDataset(a, b, self._transform(train), serial)

    def _cyclegan_val_split(self) -> str:
        if self._has_domain_split(self.val_split):
            return self.val_split
        rank_zero_warn(
            f"data.root={self.root} has no {self.val_split}A/ and {self.val_split}B/; "
            f"validating on '{self.val_fallback}' (data.val_fallback={self.val_fallback!r})"
        )
        return str(self.val_fallback)

    # -- LightningDataModule ---------------------------------------------------------
    def prepare_data(self) -> None:
        """Fetch ``url`` into ``root`` when the training split is missing (as the paired one)."""
        if self.layout != "cyclegan":
            super().prepare_data()
            return
        if self._has_domain_split(self.train_split):
            return
        if not (self.url and self.download):
            raise self._split_error(self.train_split, "data.train_split")
        self._create_once(
            lambda: self._has_domain_split(self.train_split),
            lambda: self._fetch(f"{self.train_split}A"),
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets needed for ``stage`` (all of them when ``None``)."""
        if self.layout != "cyclegan":
            super().setup(stage)
            if isinstance(self.train_set, PairedImageDataset):
                # The pairs' inputs and targets serve as two domains; each sample reads its A
                # and B from two independently chosen pairs.
                pairs = self.train_set
                self.train_set = UnpairedImageDataset(
                    DomainImages(pairs.input_paths, PairSide(pairs, 0)),
                    DomainImages(pairs.target_paths, PairSide(pairs, 1)),
                    pairs.transform,
                    self.serial,
                )
            return
        if stage in (None, "fit", "validate") and self.train_set is None:
            self.train_set = self._unpaired_split(self.train_split, "data.train_split", True)
            self.val_set = self._unpaired_split(
                self._cyclegan_val_split(), "data.val_fallback", False
            )
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._unpaired_split(self.test_split, "data.test_split", False)


class SyntheticUnpairedDataModule(UnpairedImageDataModule, SyntheticPairedDataModule):
    """The generated dataset of :class:`SyntheticPairedDataModule`, served unpaired.

    Takes the arguments of both parents (``num_images``, ``image_size``, ``serial``, ...); the
    layout is always ``aligned``, so validation and test stay paired.
    """

    def __init__(self, root: str | Path, **kwargs: Any) -> None:
        super().__init__(root, layout="aligned", **kwargs)
