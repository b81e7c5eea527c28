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
from torch import Tensor, nn

from pix2pix_lit.bench.rows import compose_train_config
from pix2pix_lit.bench.timing import PeakMemory, StepTimes
from pix2pix_lit.callbacks.performance import PerformanceCallback
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.losses import Pix2PixObjective

_AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {
    "32-true": None,
    "32": None,
    "bf16-mixed": torch.bfloat16,
}


def autocast_for(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """The autocast context Lightning's precision plugin puts around a training step."""
    if precision not in _AUTOCAST_DTYPES:
        raise ConfigError(
            f"trainer.precision={precision} is not supported by the bench's plain loop; "
            f"use one of {', '.join(_AUTOCAST_DTYPES)}"
        )
    dtype = _AUTOCAST_DTYPES[precision]
    if dtype is None:
        return nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def plain_step(
    generator: nn.Module,
    discriminator: nn.Module,
    objective: Pix2PixObjective,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    real_a: Tensor,
    real_b: Tensor,
    autocast: Callable[[], AbstractContextManager],
) -> None:
    """One pix2pix step without Lightning: D on (x, y) and (x, G(x)), then G with D frozen."""
    opt_g, opt_d = optimizers
    with autocast():
        fake_b = generator(real_a)
        loss_d, _ = objective.discriminator_loss(discriminator, real_a, real_b, fake_b)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    # As toggle_optimizer does: the G step computes no gradients for D's weights.
    discriminator.requires_grad_(False)
    with autocast():
        loss_g, _ = objective.generator_loss(discriminator, real_a, real_b, fake_b)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    discriminator.requires_grad_(True)


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
    times, total = StepTimes(), warmup + steps
    loader = datamodule.train_dataloader()
    while len(times.done) < total:
        times.new_epoch()
        for batch in loader:
            batch = datamodule.on_after_batch_transfer(move_data_to_device(batch, device), 0)
            if perf is not None:
                perf.convert_batch(batch)
            times.batch_ready(len(batch["A"]))
            plain_step(
                generator,
                discriminator,
                task.objective,
                optimizers,
                batch["A"],
                batch["B"],
                autocast,
            )
            times.batch_done(device, warmup, total)
            if len(times.done) >= total:
                break
    return times, memory.peak_mib()
