"""Aligned A/B pairs as samples: the input first and the target second, for either direction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from pix2pix_lit.data.io import to_channels
from pix2pix_lit.data.layouts import CombinedLayout, Pair, PairLayout, split_halves
from pix2pix_lit.data.transforms import PairTransform
from pix2pix_lit.errors import ConfigError

DIRECTIONS: tuple[str, ...] = ("AtoB", "BtoA")
COMBINED = CombinedLayout()


def check_direction(direction: str) -> None:
    """Raise :class:`ConfigError` unless ``direction`` is one of :data:`DIRECTIONS`."""
    if direction not in DIRECTIONS:
        raise ConfigError(
            f"data.direction={direction!r} is not valid; use one of {', '.join(DIRECTIONS)}"
        )


def split_pair(ab: np.ndarray, direction: str = "AtoB") -> tuple[np.ndarray, np.ndarray]:
    """Split an A|B image into ``(input, target)`` halves.

    With ``direction="BtoA"`` the right half is returned first, so callers always get the
    model input first whichever way the dataset is stored.
    """
    check_direction(direction)
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
        check_direction(direction)
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
