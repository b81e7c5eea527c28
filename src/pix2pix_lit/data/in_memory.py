"""Paired datasets decoded once into memory and cropped a whole batch at a time on the device.

For datasets that fit in memory (facades: 400 training pairs stored at 286×286 and 106 at
256×256, about 240 MB as uint8): each split is read once into one uint8 tensor ``(N, 6, H, W)`` (the input's three
channels, then the target's). The resize of the per-sample path is deterministic, so it is
done once here, by that path's own transform (same bicubic filter, same uint8 rounding):
training pairs are stored at ``load_size``, validation/test pairs at ``crop_size``. What
remains per sample is random: the crop window and the mirror flip. They are drawn per sample
from the seed the training sampler hands out (as the per-sample path does, so runs repeat
under ``seed_everything`` and resume mid-epoch exactly), and applied to the 6-channel stack,
so A and B always get the same ones.

With ``device_augment=True`` a training sample is only its window (index, top, left, flip);
the pixels are gathered, cropped, flipped and scaled to [-1, 1] where the batch lands (the
GPU), in ``on_after_batch_transfer``: no image bytes cross to the device per step and the
loader needs no worker processes. With ``False`` the same crop runs per sample in the loader.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from pix2pix_lit.data.io import read_rgb
from pix2pix_lit.data.paired import PairedImageDataModule
from pix2pix_lit.data.paired_dataset import split_pair
from pix2pix_lit.data.transforms import eval_transform
from pix2pix_lit.errors import ConfigError

# The uint8 level that maps to 0 in [-1, 1]: x -> x / 127.5 - 1, as the per-sample
# path's to_signed_tensor computes it.
_HALF_RANGE = 127.5


def decode_pairs(paths: Sequence[Path], direction: str, size: int) -> Tensor:
    """Read A|B images into a ``(N, 6, size, size)`` uint8 tensor: input channels, then target.

    Each half is resized by the eval transform (Pillow bicubic), whose outputs are
    uint8 levels scaled to [-1, 1] and so map back to the same levels exactly.
    """
    resize = eval_transform(size)
    pairs = np.empty((len(paths), 6, size, size), dtype=np.uint8)
    for i, path in enumerate(paths):
        a, b = resize(*split_pair(read_rgb(path), direction))
        # numpy, single-threaded: torch's thread pool costs more than it gains per image.
        signed = np.concatenate([a.numpy(), b.numpy()])
        pairs[i] = np.rint(signed * _HALF_RANGE + _HALF_RANGE)
    return torch.from_numpy(pairs)


def crop_windows(
    pairs: Tensor, index: Tensor, top: Tensor, left: Tensor, flip: Tensor, size: int
) -> Tensor:
    """``pairs[index]`` cut to ``size``×``size`` windows at ``(top, left)``, mirrored where ``flip``.

    ``index``, ``top``, ``left`` (int) and ``flip`` (bool) hold one value per item, on the
    device of ``pairs``; an item's channels (A's and B's) share its window. Returns
    ``(n, C, size, size)``, contiguous, in the dtype of ``pairs``.
    """
    n, channels, width = index.numel(), pairs.shape[1], pairs.shape[-1]
    steps = torch.arange(size, device=pairs.device)
    rows = top[:, None] + steps
    cols = left[:, None] + steps
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    # Crop and flip as one gather over the flattened pixels, the window's pixel offsets
    # broadcast (not copied) over the channels: several times faster on a CPU than
    # indexing all four dims with broadcast index tensors.
    offsets = (rows[:, :, None] * width + cols[:, None, :]).view(n, 1, size * size)
    picked = pairs.index_select(0, index).flatten(2)
    crops = picked.gather(2, offsets.expand(n, channels, size * size))
    return crops.view(n, channels, size, size)


def to_sample(pairs: Tensor) -> dict[str, Tensor]:
    """``{"A", "B"}`` float tensors in [-1, 1] from uint8 pairs ``(..., 6, H, W)``."""
    a, b = pairs[..., :3, :, :], pairs[..., 3:, :, :]
    return {
        "A": a.float().sub_(_HALF_RANGE).div_(_HALF_RANGE),
        "B": b.float().sub_(_HALF_RANGE).div_(_HALF_RANGE),
    }


class InMemoryPairedDataset(Dataset):
    """Decoded pairs as ``{"A", "B", "A_path"}`` samples in [-1, 1], like PairedImageDataset.

    Without ``crop_size`` (validation/test) a sample is the whole stored pair. With it
    (training) it is a random window, mirrored with p=0.5 when ``flip``; index with
    ``(index, seed)`` to fix the draw, as the training sampler does. With ``deferred`` a
    training sample is only that draw, ``{"index", "top", "left", "flip", "A_path"}``, for
    :func:`crop_windows` to cut out of the stack after the batch is on the device.
    """

    def __init__(
        self,
        pairs: Tensor,
        paths: Sequence[Path],
        crop_size: int | None = None,
        flip: bool = False,
        deferred: bool = False,
    ) -> None:
        if len(pairs) != len(paths):
            raise ValueError(f"{len(pairs)} decoded pairs for {len(paths)} paths")
        self.pairs = pairs
        self.paths = list(paths)
        self.crop_size = crop_size
        self.flip = flip
        self.deferred = deferred

    def __len__(self) -> int:
        return len(self.paths)

    def draw_window(self, seed: int | None = None) -> dict[str, Any]:
        """A random ``top``, ``left`` and ``flip``; from ``seed``, or torch's global generator."""
        if self.crop_size is None:
            raise RuntimeError("a dataset without crop_size has no random windows")
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        height, width = self.pairs.shape[-2:]
        top = int(torch.randint(0, height - self.crop_size + 1, (), generator=generator))
        left = int(torch.randint(0, width - self.crop_size + 1, (), generator=generator))
        flip = self.flip and bool(torch.rand((), generator=generator) < 0.5)
        return {"top": top, "left": left, "flip": flip}

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        """Sample ``item``, or ``(index, seed)`` to fix the random window."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        path = str(self.paths[index])
        if self.crop_size is None:
            return {**to_sample(self.pairs[index]), "A_path": path}
        window = self.draw_window(seed)
        if self.deferred:
            return {"index": index, **window, "A_path": path}
        crop = crop_windows(
            self.pairs,
            torch.tensor([index]),
            torch.tensor([window["top"]]),
            torch.tensor([window["left"]]),
            torch.tensor([window["flip"]]),
            self.crop_size,
        )
        return {**to_sample(crop[0]), "A_path": path}


class InMemoryPairedDataModule(PairedImageDataModule):
    """:class:`PairedImageDataModule` with every split decoded into memory once.

    Same arguments, sampler, resumable state and batches (``{"A", "B", "A_path"}`` in
    [-1, 1], A the input), plus:

    Args:
        device_augment: the training loader serves crop windows only; the pixels are cut,
            flipped and scaled on the training device after transfer. ``False``: each sample
            is cropped in the loader (``num_workers`` processes).
    """

    def __init__(self, root: str | Path, *, device_augment: bool = True, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        if (self.pair_layout.name, self.preprocess, self.channels) != (
            "combined",
            "resize_and_crop",
            (3, 3),
        ):
            raise ConfigError(
                f"{type(self).__name__} serves RGB A|B images preprocessed by resize_and_crop; "
                f"got data.layout={self.pair_layout.name}, data.preprocess={self.preprocess}, "
                f"channels {self.channels}: use the PairedImageDataModule for those"
            )
        self.device_augment = device_augment
        self._device_pairs: Tensor | None = None

    def setup(self, stage: str | None = None) -> None:
        """Decode the splits needed for ``stage`` (all of them when ``None``)."""
        if stage in (None, "fit", "validate") and self.train_set is None:
            train, val = ([pair.a for pair in pairs] for pairs in self.splits.train_and_val())
            self.train_set = InMemoryPairedDataset(
                decode_pairs(train, self.direction, self.load_size),
                train,
                self.crop_size,
                self.flip,
                deferred=self.device_augment,
            )
            self.val_set = self._eval_set(val)
        if stage in (None, "test", "predict") and self.test_set is None:
            test = self.splits.pairs(self.test_split, "data.test_split")
            self.test_set = self._eval_set([pair.a for pair in test])

    def _eval_set(self, paths: list[Path]) -> InMemoryPairedDataset:
        return InMemoryPairedDataset(decode_pairs(paths, self.direction, self.crop_size), paths)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Cut a batch of deferred training samples out of the stack, on the batch's device."""
        if not (isinstance(batch, dict) and "index" in batch):
            return batch
        pairs = self._pairs_on(batch["index"].device)
        window = (batch[key] for key in ("index", "top", "left", "flip"))
        return {
            **to_sample(crop_windows(pairs, *window, self.crop_size)),
            "A_path": batch["A_path"],
        }

    def _pairs_on(self, device: torch.device) -> Tensor:
        # The training stack moves to the device once, not per batch.
        if self.train_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before training")
        if self._device_pairs is None or self._device_pairs.device != device:
            self._device_pairs = self.train_set.pairs.to(device)
        return self._device_pairs
