"""A shuffling sampler whose position survives a checkpoint, for exact mid-epoch resumes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Sampler


class ResumableRandomSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, augmentation_seed)`` in a random order that depends only on
    ``(seed, epoch)``.

    Each epoch's permutation and per-sample augmentation seeds come from a generator seeded
    with ``seed`` and the epoch (set by Lightning through :meth:`set_epoch`), never from the
    global random generators. So data loading neither consumes nor depends on the global
    state — prefetching, worker counts and restarts cannot shift it — and a run stopped after
    ``consumed`` samples of an epoch continues with exactly the samples and crops it would
    have drawn (:meth:`state_dict` / :meth:`load_state_dict`).
    """

    def __init__(self, num_samples: int, seed: int) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0
        self._resume_epoch: int | None = None
        self._resume_consumed = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        # Resume only within the saved epoch. The position is not dropped at the first
        # iteration: loaders with workers pull indices as soon as an iterator is created,
        # and an iterator may be created and discarded before the real one.
        if epoch != self._resume_epoch:
            self._resume_epoch = None

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.num_samples, generator=generator).tolist()
        seeds = torch.randint(0, 2**62, (self.num_samples,), generator=generator).tolist()
        start = 0
        if self._resume_epoch == self.epoch:
            start = min(self._resume_consumed, self.num_samples)
        yield from zip(order[start:], seeds[start:], strict=True)

    def state_dict(self, consumed: int) -> dict[str, Any]:
        """The state after ``consumed`` samples of the current epoch were trained on."""
        return {"seed": self.seed, "epoch": self.epoch, "consumed": consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the saved epoch where it stopped, the next time it is iterated."""
        self.seed = state["seed"]
        # Also the current epoch: a loader with workers may create its iterator (and draw
        # indices) before Lightning calls set_epoch for the resumed epoch.
        self.epoch = self._resume_epoch = state["epoch"]
        self._resume_consumed = state["consumed"]
