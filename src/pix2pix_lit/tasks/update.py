"""One update of one network, the same for every task: zero the gradients, backpropagate, step
the optimizer, the networks it does not train frozen meanwhile; skipped when the loss is not
finite.

* :func:`guarded_update` is the update inside Lightning (its precision plugin's backward,
  gradient clipping in the task's ``on_before_optimizer_step``), behind a
  :class:`NonFiniteGuard`.
* :class:`PlainUpdate` is the same update on plain optimizers, without guard, Lightning or host
  sync: the bench's plain loop and the whole-step CUDA graph run it.

A task's step runs its updates and hands their :class:`Update` results to
:meth:`NonFiniteGuard.settle`, which undoes the batch's traces when one of them was skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from pix2pix_lit.errors import ConfigError, TrainingDivergedError

log = logging.getLogger(__name__)

Logs = dict[str, Tensor]
#: a network's loss on the current batch and its logged terms, computed when called
LossFn = Callable[[], tuple[Tensor, Logs]]


@dataclass(frozen=True)
class Update:
    """What one update did: the logged terms of its loss, and whether the optimizer stepped."""

    logs: Logs
    stepped: bool = True


#: one update: (network's name, the optimizer that trains it, its loss) -> what it did
UpdateFn = Callable[[str, Optimizer, LossFn], Update]


def merged_logs(updates: Iterable[Update]) -> Logs:
    """The logged terms of a batch's updates, in their order."""
    return {name: value for update in updates for name, value in update.logs.items()}


def descend(optimizer: Optimizer, loss: Tensor, backward: Callable[[Tensor], None]) -> None:
    """The update itself: zero ``optimizer``'s gradients, ``backward(loss)``, step."""
    optimizer.zero_grad(set_to_none=True)
    backward(loss)
    optimizer.step()


class PlainUpdate:
    """The update on plain optimizers, with the parameters of ``networks`` that the optimizer
    does not train frozen meanwhile (as ``LightningModule.toggle_optimizer`` does): no guard,
    no host sync, no Lightning hooks."""

    def __init__(self, networks: Sequence[nn.Module]) -> None:
        self.networks = tuple(networks)

    def __call__(self, name: str, optimizer: Optimizer, loss_fn: LossFn) -> Update:
        trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
        frozen = [p for n in self.networks for p in n.parameters()
                  if p.requires_grad and id(p) not in trained]  # fmt: skip
        for param in frozen:
            param.requires_grad_(False)
        loss, logs = loss_fn()
        descend(optimizer, loss, Tensor.backward)
        for param in frozen:
            param.requires_grad_(True)
        return Update(logs)


def guarded_update(
    task: L.LightningModule,
    guard: NonFiniteGuard,
    name: str,
    optimizer: Optimizer,
    loss_fn: LossFn,
) -> Update:
    """One step of ``optimizer`` on ``loss_fn()`` inside Lightning (backward through its
    precision plugin), the task's other networks frozen meanwhile; skipped when ``guard``
    finds the loss not finite."""
    task.toggle_optimizer(optimizer)
    loss, logs = loss_fn()
    stepped = guard.allows(task, loss, name)
    if stepped:
        descend(optimizer, loss, task.manual_backward)
    task.untoggle_optimizer(optimizer)
    return Update(logs, stepped)


@dataclass
class BufferSnapshot:
    """Copies of buffers (batch-norm statistics and their counters), to put back in place."""

    buffers: list[Tensor]
    copies: list[Tensor] = field(repr=False)

    def restore(self) -> None:
        if self.buffers:  # instance-norm networks have none
            with torch.no_grad():
                torch._foreach_copy_(self.buffers, self.copies)


class NonFiniteGuard:
    """Skips the update of a network whose loss is not finite, and stops training after
    ``patience`` such losses of the same network in a row (0: no check at all).

    Checking a loss costs one device-to-host sync. Under data-parallel training every process
    skips when any one has a non-finite loss: a process that stepped alone would wait forever
    for the others' gradients. A batch whose loss turns out non-finite has already pushed its
    NaNs into the batch-norm running statistics during the forward pass; skipping the step
    alone would leave them there, so the step takes a :meth:`snapshot` before its forward
    passes and :meth:`settle` puts it back.
    """

    def __init__(self, patience: int) -> None:
        if patience < 0:
            raise ConfigError(f"task.nonfinite_patience={patience} must be >= 0")
        self.patience = patience
        #: updates skipped so far in this process's run
        self.skipped_steps = 0
        self._in_a_row: dict[str, int] = {}
        self._copies: list[Tensor] = []

    @property
    def enabled(self) -> bool:
        return self.patience > 0

    def snapshot(self, *modules: nn.Module) -> BufferSnapshot | None:
        """The buffers of ``modules`` as they are before a step; None when the check is off."""
        if not self.enabled:
            return None
        buffers = [b for m in modules for b in m.buffers()]
        copies = self._copies
        if [(b.shape, b.device) for b in copies] != [(b.shape, b.device) for b in buffers]:
            copies = self._copies = [b.detach().clone() for b in buffers]
        elif buffers:
            # into the same storage every step, in one call: a clone per buffer would cost a
            # kernel launch and an allocation each (30+ per pix2pix step)
            torch._foreach_copy_(copies, buffers)
        return BufferSnapshot(buffers, copies)

    def allows(self, task: L.LightningModule, loss: Tensor, name: str) -> bool:
        """Whether to step on ``loss`` (always, when the check is off); a non-finite one is
        counted, logged as ``train/skipped_steps`` and warned about."""
        if not self.enabled:
            return True
        finite_here = bool(torch.isfinite(loss).all())
        if task.trainer.strategy.reduce_boolean_decision(finite_here, all=True):
            self._in_a_row[name] = 0
            return True
        count = self._in_a_row[name] = self._in_a_row.get(name, 0) + 1
        self.skipped_steps += 1
        task.log("train/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)
        log.warning(
            "Non-finite %s loss (%s in process %d) at epoch %d, step %d: step skipped (%d in a row)",
            name, float(loss.detach()), task.global_rank, task.current_epoch, task.global_step,
            count,
        )  # fmt: skip
        return False

    def settle(self, updates: Sequence[Update], snapshot: BufferSnapshot | None) -> bool:
        """Whether every update of the batch stepped. When one was skipped, the batch's
        traces are undone (the buffers of ``snapshot``) and training stops with
        :class:`TrainingDivergedError` after ``patience`` non-finite losses in a row."""
        if all(update.stepped for update in updates):
            return True
        if snapshot is not None:
            snapshot.restore()
        for name, count in self._in_a_row.items():
            if count >= self.patience:
                raise TrainingDivergedError(
                    f"the {name} loss was non-finite in {count} consecutive steps "
                    f"(task.nonfinite_patience={self.patience}); training stopped "
                    "with the weights from before the fault in checkpoints/before_nonfinite.ckpt."
                    " Try a lower optim.lr, task.clip_grad_norm > 0, or trainer.precision=32"
                )
        return False
