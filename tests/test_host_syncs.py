"""No host-device synchronisation in the training hot path.

On a GPU every conversion of a tensor to a Python value (``.item()``, ``bool()``,
``float()``, ``.tolist()``, ``.cpu()``) makes the host wait for the device, which then idles
while the host queues the next kernels. The CPU cannot see a sync, but it sees the calls that
cause one: these tests count them between the starts of consecutive training batches (the
step, both optimizers, logging outside log steps, fetching the next batch).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch

from helpers import run_tiny

CONVERSIONS = ("item", "tolist", "cpu", "__bool__", "__float__", "__int__")


class CountHostConversions(L.Callback):
    """Counts tensor-to-host conversions per training batch (from one batch start to the
    next), once the first batch has run."""

    latest: CountHostConversions | None = None

    def __init__(self) -> None:
        CountHostConversions.latest = self
        self.per_batch: list[int] = []
        self._count = 0
        self._originals: dict[str, Callable[..., Any]] = {}

    def _wrap(self, name: str) -> Callable[..., Any]:
        original = self._originals[name] = getattr(torch.Tensor, name)

        def counted(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            # torch.optim keeps the step counts of non-capturable optimizers on the CPU on
            # purpose; reading them is no device sync
            caller = sys._getframe(1).f_code
            if not (caller.co_name == "_get_value" and "torch/optim" in caller.co_filename):
                self._count += 1
            return original(tensor, *args, **kwargs)

        return counted

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 1:
            for name in CONVERSIONS:
                setattr(torch.Tensor, name, self._wrap(name))
        elif batch_idx > 1:
            self.per_batch.append(self._count)
        self._count = 0

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        for name, original in self._originals.items():
            setattr(torch.Tensor, name, original)


def _conversions_per_batch(tmp_path: Path, *overrides: str) -> list[int]:
    run_tiny(
        tmp_path,
        "data.batch_size=1",  # 8 batches
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=1000",
        "trainer.limit_val_batches=0",
        "logger=none",
        f"+callbacks.count._target_={__name__}.CountHostConversions",
        *overrides,
    )
    counter = CountHostConversions.latest
    assert counter is not None and len(counter.per_batch) == 6
    return counter.per_batch


def test_training_steps_make_no_host_syncs_without_the_nonfinite_check(tmp_path: Path) -> None:
    assert _conversions_per_batch(tmp_path, "task.nonfinite_patience=0") == [0] * 6


def test_the_nonfinite_check_costs_one_sync_per_optimizer_step(tmp_path: Path) -> None:
    assert _conversions_per_batch(tmp_path) == [2] * 6  # the D step and the G step


def test_the_fast_path_makes_no_host_syncs(tmp_path: Path) -> None:
    # bf16 autocast and fused Adam (perf=fast)
    fast = ("perf=fast", "trainer.precision=bf16-mixed")  # bf16 even where perf=fast picks fp32
    assert _conversions_per_batch(tmp_path, *fast, "task.nonfinite_patience=0") == [0] * 6
