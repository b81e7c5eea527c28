"""A shuffling sampler whose position survives a checkpoint, for exact mid-epoch resumes, and
evaluation batches bucketed by sample size."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence
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

    Under data parallelism each of the ``num_replicas`` processes builds the same epoch order
    and takes every ``num_replicas``-th entry from position ``rank``. The order is padded by
    repeating its first entries to a multiple of ``num_replicas``, so every process runs the
    same number of batches (DDP needs it; a process with one batch more would wait forever).
    With one replica the order is the permutation itself.
    """

    def __init__(self, num_samples: int, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"sampler rank={rank} of num_replicas={num_replicas} is not valid; "
                "num_replicas must be >= 1 and rank in [0, num_replicas)"
            )
        self.num_samples = num_samples
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self._resume_epoch: int | None = None
        # entries of the epoch's order consumed by all replicas together
        self._resume_consumed = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        # Resume only within the saved epoch. The position is not dropped at the first
        # iteration: loaders with workers pull indices as soon as an iterator is created,
        # and an iterator may be created and discarded before the real one.
        if epoch != self._resume_epoch:
            self._resume_epoch = None

    def __len__(self) -> int:
        # The whole epoch's share, also when resuming: Lightning counts the epoch's batches
        # from this and the resumed loop continues its count where it stopped.
        return math.ceil(self.num_samples / self.num_replicas)

    def _padded_length(self) -> int:
        return math.ceil(self.num_samples / self.num_replicas) * self.num_replicas

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.num_samples, generator=generator).tolist()
        seeds = torch.randint(0, 2**62, (self.num_samples,), generator=generator).tolist()
        pairs = list(zip(order, seeds, strict=True))
        pairs = (pairs * self.num_replicas)[: self._padded_length()]
        start = 0
        if self._resume_epoch == self.epoch:
            start = min(self._resume_consumed, len(pairs))
        yield from pairs[start + self.rank :: self.num_replicas]

    def state_dict(self, consumed: int) -> dict[str, Any]:
        """The state after this process trained on ``consumed`` samples of the current epoch.

        The replicas step in lockstep, so together they consumed the (padded) epoch order
        ``consumed * num_replicas`` entries deep; the state is the same on every rank.
        Resume with the number of processes that saved it.
        """
        consumed_all = min(consumed * self.num_replicas, self._padded_length())
        return {"seed": self.seed, "epoch": self.epoch, "consumed": consumed_all}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the saved epoch where it stopped, the next time it is iterated."""
        self.seed = state["seed"]
        epoch, consumed = state["epoch"], state["consumed"]
        if consumed >= self._padded_length():
            # saved at the end of its epoch (the end-of-epoch checkpoints): the run goes on
            # with the next epoch, from its start
            epoch, consumed = epoch + 1, 0
        # Also the current epoch: a loader with workers may create its iterator (and draw
        # indices) before Lightning calls set_epoch for the resumed epoch; an exhausted epoch
        # there would end the next one before its first batch.
        self.epoch = self._resume_epoch = epoch
        self._resume_consumed = consumed


class SizeBatches(Sampler[list[int]]):
    """Evaluation batches of up to ``batch_size`` samples of one size (bucketing by size).

    ``sizes[i]`` is the size of sample i; the batches of each size follow in the order the
    sizes first appear, the samples of a batch in dataset order. Used where samples keep
    their own sizes (``data.preprocess=none`` or ``scale_width``) and a batch cannot mix them.
    """

    def __init__(self, sizes: Sequence[Hashable], batch_size: int) -> None:
        groups: dict[Hashable, list[int]] = {}
        for index, size in enumerate(sizes):
            groups.setdefault(size, []).append(index)
        self.batches = [
            indices[start : start + batch_size]
            for indices in groups.values()
            for start in range(0, len(indices), batch_size)
        ]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
