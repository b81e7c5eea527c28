"""The global random generators of a run: saved in checkpoints, and set aside around
validation.

Lightning does not store the generators; without them a resumed run draws other dropout
masks, crops and shuffles than the uninterrupted run would have. Validation draws its own
noise (dropout in the paper's test-time protocol) from a fixed seed and hands the training's
generators back untouched: metrics of different epochs see the same noise, and training draws
the same numbers whether or not, and however often, it was validated.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def collect_rng_states() -> dict[str, Any]:
    """The states of python's, numpy's and torch's (CPU and CUDA) global generators.

    Plain python types and tensors only, so checkpoints still load with
    ``torch.load(weights_only=True)``.
    """
    kind, key, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(key.copy()), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Put back the states :func:`collect_rng_states` returned."""
    random.setstate(states["python"])
    kind, key, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, key.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class SeededEvaluation:
    """Runs evaluation (validation, test) on the random numbers of ``seed`` and the training
    on its own: :meth:`start` sets the training's generators aside and seeds, :meth:`end`
    puts them back."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._training: dict[str, Any] | None = None

    def start(self) -> None:
        self._training = collect_rng_states()
        torch.manual_seed(self.seed)

    def end(self) -> None:
        if self._training is not None:
            restore_rng_states(self._training)
            self._training = None
