"""Source and target digits served together, for training and validating a DTN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from pix2pix_lit.data.digits import DigitsDataModule, DigitsDataset
from pix2pix_lit.data.paired import PairedImageDataModule
from pix2pix_lit.errors import ConfigError


class UnpairedDigits(Dataset):
    """Sample i: source image i (``A``, ``A_label``) with a target image drawn at random
    (``B``, ``B_label``), from the sample's seed when indexed by ``(index, seed)`` (the
    resumable sampler), else from torch's global generator. One epoch = one pass over S."""

    def __init__(self, source: DigitsDataset, target: DigitsDataset) -> None:
        self.source = source
        self.target = target

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (item, None)
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        other = int(torch.randint(len(self.target), (), generator=generator))
        return _sample(self.source[index], self.target[other])


class AlignedDigits(Dataset):
    """Sample i: source image i and target image i, for validation and test.

    The longer set sets the length; the shorter one is repeated and its repeats are marked
    ``A_counted`` / ``B_counted`` = False, so accuracies count every image exactly once.
    """

    def __init__(self, source: DigitsDataset, target: DigitsDataset) -> None:
        self.source = source
        self.target = target

    def __len__(self) -> int:
        return max(len(self.source), len(self.target))

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = _sample(
            self.source[index % len(self.source)], self.target[index % len(self.target)]
        )
        return {
            **sample,
            "A_counted": index < len(self.source),
            "B_counted": index < len(self.target),
        }


def _sample(source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    return {
        "A": source["image"],
        "A_label": source["label"],
        "B": target["image"],
        "B_label": target["label"],
    }


class DigitTransferDataModule(PairedImageDataModule):
    """S → T digit batches for the Domain Transfer Network (Taigman et al. 2017, section 4).

    Training: ``{"A": S images, "A_label", "B": T images, "B_label"}`` (N, C, H, W) in [-1, 1],
    each S image of the epoch with a random T image (labels are for metrics only: DTN does not
    train on them). Validation and test: the test splits of both, aligned by index (see
    :class:`AlignedDigits`). ``source`` and ``target`` are the two domains' data modules (each
    generates and caches its set); batch size, workers and the resumable sampler are this
    module's own.
    """

    def __init__(self, source: DigitsDataModule, target: DigitsDataModule, **kwargs: Any) -> None:
        if source.image_size != target.image_size:
            raise ConfigError(
                f"data.source.image_size={source.image_size} and data.target.image_size="
                f"{target.image_size} differ; DTN maps between images of one size"
            )
        super().__init__(Path(source.root), seed=source.seed, **kwargs)
        self.source = source
        self.target = target
        self.image_size = source.image_size

    def prepare_data(self) -> None:
        self.source.prepare_data()
        self.target.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            self.source.setup("fit")
            self.target.setup("fit")
            self.train_set = UnpairedDigits(self.source.train_set, self.target.train_set)
            self.val_set = AlignedDigits(self.source.val_set, self.target.val_set)
        if stage in (None, "test", "predict") and self.test_set is None:
            self.source.setup("test")
            self.target.setup("test")
            self.test_set = AlignedDigits(self.source.test_set, self.target.test_set)
