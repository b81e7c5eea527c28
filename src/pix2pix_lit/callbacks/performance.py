"""Speed switches applied to a task's networks from outside it: channels_last and torch.compile.

The task and network code stay the plain, readable path; this callback changes how their
tensors are laid out and executed, never what they compute:

* ``channels_last``: 4-D weights and the batch's images in NHWC memory order, the layout the
  oneDNN (CPU) and cuDNN (GPU) convolutions run fastest on. Dropout fills its mask in memory
  order, so on NHWC activations it would draw other masks than the plain path from the same
  seed; its input is therefore handed to it in the standard layout (a tiny copy: U-Net
  dropout sits on the coarsest levels), which keeps results equal to the plain path's.
* ``compile``: :meth:`torch.nn.Module.compile` on each network, in place, so parameter
  names, ``state_dict`` keys and checkpoints are the same as without it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.nn.modules.dropout import _DropoutNd

from pix2pix_lit.errors import ConfigError


def _standard_layout_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    first, *rest = args
    return (first.contiguous(), *rest)


def to_channels_last(network: nn.Module) -> None:
    """Put ``network``'s 4-D parameters and buffers in channels_last order, in place.

    Parameters keep their identity (only their storage changes), so optimizers already
    built over them stay valid. Dropout layers get their input in the standard layout.
    """
    network.to(memory_format=torch.channels_last)
    for module in network.modules():
        if isinstance(module, _DropoutNd):
            module.register_forward_pre_hook(_standard_layout_input)


def images_to_channels_last(batch: MutableMapping[str, Any]) -> None:
    """Convert the 4-D tensors (image batches) of ``batch`` to channels_last, in place."""
    for key, value in batch.items():
        if isinstance(value, Tensor) and value.dim() == 4:
            batch[key] = value.contiguous(memory_format=torch.channels_last)


class PerformanceCallback(L.Callback):
    """Applies the ``perf`` config group's layout and compilation switches to a task.

    Args:
        channels_last: networks and batch images in channels_last memory order.
        compile: compile each network with :meth:`torch.nn.Module.compile`.
        compile_mode: ``torch.compile``'s ``mode`` (``None``: its default; on a GPU e.g.
            ``"max-autotune-no-cudagraphs"`` or ``"reduce-overhead"``, which uses CUDA graphs).
        networks: attributes of the LightningModule holding the networks to convert; ``None``:
            each of its direct submodules that has parameters (generators, discriminators).
    """

    def __init__(
        self,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
        networks: Sequence[str] | None = None,
    ) -> None:
        self.channels_last = channels_last
        self.compile = compile
        self.compile_mode = compile_mode
        self.networks = None if networks is None else tuple(networks)
        # fit followed by test calls setup twice; each network is converted only once.
        self._prepared: weakref.WeakSet[nn.Module] = weakref.WeakSet()

    def prepare(self, networks: Iterable[nn.Module]) -> None:
        """Apply the switches to ``networks`` in place (used by the callback and the benchmark)."""
        for network in networks:
            if network in self._prepared:
                continue
            if self.channels_last:
                to_channels_last(network)
            if self.compile:
                network.compile(mode=self.compile_mode)
            self._prepared.add(network)

    def _task_networks(self, pl_module: L.LightningModule) -> list[nn.Module]:
        if self.networks is None:
            return [m for m in pl_module.children() if next(m.parameters(), None) is not None]
        missing = [name for name in self.networks if not hasattr(pl_module, name)]
        if missing:
            raise ConfigError(
                f"callbacks.performance.networks names {', '.join(missing)}, which "
                f"{type(pl_module).__name__} does not have; use its network attributes"
            )
        return [getattr(pl_module, name) for name in self.networks]

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Before the strategy moves the module to its device (which keeps the layout) and
        # before the first forward pass, so nothing runs in the plain layout first.
        self.prepare(self._task_networks(pl_module))

    def convert_batch(self, batch: Any) -> None:
        """Put ``batch``'s images in channels_last order, in place, when that switch is on."""
        # Callbacks cannot replace the batch, only change it in place: dict batches (this
        # project's) are converted; others reach the networks as they are, whose first
        # convolution then converts them itself because the weights are channels_last.
        if self.channels_last and isinstance(batch, MutableMapping):
            images_to_channels_last(batch)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.convert_batch(batch)

    def on_validation_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.convert_batch(batch)

    on_test_batch_start = on_validation_batch_start
    on_predict_batch_start = on_validation_batch_start
