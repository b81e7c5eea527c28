"""The plain PyTorch loop the Lightning run is measured against.

It builds the same data module, networks, objective and optimizers from the same config and
seed, and does the same step (D step, then G step with D frozen) under the same switches
(autocast, channels_last, fused Adam, compile), so the difference is Lightning's overhead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.apply_func import move_data_to_device
from torch import Tensor

from pix2pix_lit.bench.rows import compose_train_config
from pix2pix_lit.bench.timing import PeakMemory, StepTimes
from pix2pix_lit.callbacks.performance import PerformanceCallback
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.tasks.graphed_step import GraphedStep
from pix2pix_lit.tasks.pix2pix import update_step

_AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {
    "32-true": None,
    "32": None,
    "bf16-mixed": torch.bfloat16,
}


def autocast_for(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """The autocast context Lightning's precision plugin puts around a training step (without
    the weight-cast cache, as there; a CUDA graph capture needs it off)."""
    if precision not in _AUTOCAST_DTYPES:
        raise ConfigError(
            f"trainer.precision={precision} is not supported by the bench's plain loop; "
            f"use one of {', '.join(_AUTOCAST_DTYPES)}"
        )
    dtype = _AUTOCAST_DTYPES[precision]
    if dtype is None:
        return nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype, cache_enabled=False)


def plain_run(
    overrides: Sequence[str], warmup: int, steps: int, device: torch.device
) -> tuple[StepTimes, float | None]:
    """(b): the same data, networks, objective, optimizers and switches in a plain loop."""
    cfg = compose_train_config(overrides)
    memory = PeakMemory(device)
    memory.start()
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    task = instantiate(cfg.task).to(device)
    generator, discriminator = task.generator, task.discriminator
    perf: PerformanceCallback | None = None
    if cfg.callbacks and cfg.callbacks.get("performance"):
        perf = instantiate(cfg.callbacks.performance)
        perf.prepare([generator, discriminator])
    optimizers = (
        task.optimizer_g(generator.parameters()),
        task.optimizer_d(discriminator.parameters()),
    )
    autocast = autocast_for(str(cfg.trainer.precision), device)

    def step(real_a: Tensor, real_b: Tensor) -> dict[str, Tensor]:
        # under autocast as Lightning runs a training step
        with autocast():
            return update_step(generator, discriminator, task.objective, optimizers, real_a, real_b)

    if cfg.task.get("cuda_graph"):
        step = GraphedStep(step, (generator, discriminator), optimizers)
    times, total = StepTimes(), warmup + steps
    loader = datamodule.train_dataloader()
    while len(times.done) < total:
        times.new_epoch()
        for batch in loader:
            batch = datamodule.on_after_batch_transfer(move_data_to_device(batch, device), 0)
            if perf is not None:
                perf.convert_batch(batch)
            times.batch_ready(len(batch["A"]))
            step(batch["A"], batch["B"])
            times.batch_done(device, warmup, total)
            if len(times.done) >= total:
                break
    return times, memory.peak_mib()
