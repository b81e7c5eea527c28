"""Data-parallel training of adversarial tasks: one DistributedDataParallel per network.

Lightning's DDP wraps the whole LightningModule, so a manual discriminator step leaves the
generator's parameters without gradients and the generator step the discriminator's, and
DDP stops with "Expected to have finished reduction in the prior iteration"
(Lightning-AI/pytorch-lightning #20866, #20328). ``find_unused_parameters=True`` gets it
running by searching the autograd graph after every forward pass. :class:`NetworkDDPStrategy`
instead gives each network (each child module of the task with trainable parameters) its
own :class:`~torch.nn.parallel.DistributedDataParallel`, whose gradients are all-reduced in
buckets while its own backward pass runs — the set-up PyTorch's DCGAN-style examples use,
proposed for Lightning in PR #20936 (this is an independent implementation).
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from datetime import timedelta
from typing import Any, Literal

import lightning as L
import torch
from lightning.fabric.plugins import CheckpointIO, ClusterEnvironment
from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.pytorch.accelerators import Accelerator
from lightning.pytorch.plugins.layer_sync import TorchSyncBatchNorm
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers import subprocess_script
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.launching.ddp_processes import SweepJobLauncher

log = logging.getLogger(__name__)

_WRAPPER_PREFIX = "module."


class NetworkDDP(DistributedDataParallel):
    """A network's DistributedDataParallel that synchronises only the passes that train it.

    A forward pass goes through DDP (which prepares the all-reduce of this network's
    gradients in the coming backward pass) only when gradients are enabled and the network's
    parameters require them. In the other network's step Lightning's ``toggle_optimizer`` has
    switched them off, and the call runs the plain module: DDP would otherwise wait for
    gradients that never come. Under ``no_grad`` (validation, image grids on rank 0 alone) it
    runs the plain module too, with no collective call that the other ranks would have to
    join.

    Checkpoints keep the keys of an unwrapped task: ``state_dict`` leaves out the wrapper's
    ``module.`` prefix.
    """

    def __init__(self, module: nn.Module, **kwargs: Any) -> None:
        super().__init__(module, **kwargs)
        self.register_state_dict_post_hook(_drop_wrapper_prefix)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.module.parameters()):
            return super().forward(*args, **kwargs)
        return self.module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            network = super().__getattr__("module")
            if not hasattr(network, name):
                raise
        value = getattr(network, name)
        if callable(value):
            # Only forward() is synchronised: a network trained through another method
            # (e.g. U-GAT-IT's forward_with_cam) would silently drift apart on each rank.
            raise ConfigError(
                f"the task calls {type(network).__name__}.{name}(), which trainer=ddp does not "
                "synchronise across processes (only forward() is); train this model on one "
                "device (trainer=gpu)"
            )
        return value


def _drop_wrapper_prefix(
    module: nn.Module, state_dict: dict[str, Tensor], prefix: str, local_metadata: Any
) -> None:
    inner = prefix + _WRAPPER_PREFIX
    for key in [k for k in state_dict if k.startswith(inner)]:
        state_dict[prefix + key[len(inner) :]] = state_dict.pop(key)


class TrainingSyncBatchNorm(TorchSyncBatchNorm):
    """``sync_batchnorm`` whose layers pool statistics across processes only in training passes.

    Validation and the image grids run under ``no_grad``; there each process normalises
    with its own batch, as a single device would. That matters for pix2pix, whose test-time
    protocol keeps batch norm in training mode: torch's SyncBatchNorm would then call a
    collective in the grid that rank 0 draws alone, and wait forever.
    """

    def apply(self, model: nn.Module) -> nn.Module:
        model = super().apply(model)
        for layer in model.modules():
            # torch's converter only builds its own class; the subclass adds no state.
            if type(layer) is nn.SyncBatchNorm:
                layer.__class__ = _GradSyncBatchNorm
        return model


class _GradSyncBatchNorm(nn.SyncBatchNorm):
    def forward(self, input: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            return super().forward(input)
        return _BatchNorm.forward(self, input)


class NetworkDDPStrategy(DDPStrategy):
    """DDP with one :class:`NetworkDDP` per network of the task, not around the task.

    Every child module of the LightningModule with trainable parameters (pix2pix: generator
    and discriminator) is wrapped while fitting and unwrapped at teardown; the LightningModule
    itself stays unwrapped, so Lightning calls ``training_step`` directly and
    ``manual_backward`` is a plain backward pass whose hooks all-reduce the gradients of the
    network being trained. ``trainer.sync_batchnorm=true`` uses :class:`TrainingSyncBatchNorm`.

    Extra keyword arguments go to :class:`~torch.nn.parallel.DistributedDataParallel` (e.g.
    ``find_unused_parameters``, ``gradient_as_bucket_view``, ``bucket_cap_mb``).
    """

    def __init__(
        self,
        accelerator: Accelerator | None = None,
        parallel_devices: list[torch.device] | None = None,
        cluster_environment: ClusterEnvironment | None = None,
        checkpoint_io: CheckpointIO | None = None,
        precision_plugin: Precision | None = None,
        process_group_backend: str | None = None,
        timeout: timedelta | None = default_pg_timeout,
        start_method: Literal["popen", "spawn", "fork", "forkserver"] = "popen",
        **ddp_kwargs: Any,
    ) -> None:
        super().__init__(
            accelerator=accelerator,
            parallel_devices=parallel_devices,
            cluster_environment=cluster_environment,
            checkpoint_io=checkpoint_io,
            precision_plugin=precision_plugin,
            process_group_backend=process_group_backend,
            timeout=timeout,
            start_method=start_method,
            **ddp_kwargs,
        )
        self._wrapped: list[str] = []

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if type(self._launcher) is subprocess_script._SubprocessScriptLauncher:
            self._launcher = SweepJobLauncher(
                self.cluster_environment, self.num_processes, self.num_nodes
            )

    def setup(self, trainer: L.Trainer) -> None:
        if type(self._layer_sync) is TorchSyncBatchNorm:
            if self.root_device.type != "cuda":
                raise ConfigError(
                    "trainer.sync_batchnorm=true needs CUDA devices (torch's SyncBatchNorm "
                    f"does not run on {self.root_device.type}); set trainer.sync_batchnorm=false"
                )
            self._layer_sync = TrainingSyncBatchNorm()
        super().setup(trainer)

    def configure_ddp(self) -> None:
        task = self.lightning_module
        device_ids = self.determine_ddp_device_ids()
        # DDP is built on a side stream, as Lightning does (PyTorch CUDA semantics notes).
        stream = torch.cuda.stream(torch.cuda.Stream()) if device_ids is not None else nullcontext()
        with stream:
            for name, child in list(task.named_children()):
                if any(p.requires_grad for p in child.parameters()):
                    setattr(
                        task, name, NetworkDDP(child, device_ids=device_ids, **self._ddp_kwargs)
                    )
                    self._wrapped.append(name)
        if not self._wrapped:
            raise ConfigError(
                f"{type(task).__name__} has no child module with trainable parameters for "
                "NetworkDDPStrategy (trainer=ddp) to wrap"
            )
        log.info("NetworkDDPStrategy: one DistributedDataParallel each for %s", self._wrapped)

    def teardown(self) -> None:
        task = self.lightning_module
        if task is not None:
            for name in self._wrapped:
                setattr(task, name, getattr(task, name).module)
        self._wrapped = []
        super().teardown()
