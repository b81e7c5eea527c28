"""The machinery every task shares, piece by piece: the plain update, the non-finite guard,
the choice of logging steps, ρ clipping by the optimizer that trains it."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from pix2pix_lit.errors import TrainingDivergedError
from pix2pix_lit.networks import LIN, AdaLIN, UGATITGenerator
from pix2pix_lit.networks.lin import clip_rho_after_steps
from pix2pix_lit.tasks.loss_logging import loggers_write_this_step
from pix2pix_lit.tasks.update import NonFiniteGuard, PlainUpdate, Update


def test_the_plain_update_steps_one_network_with_the_others_frozen() -> None:
    torch.manual_seed(0)
    g, d = nn.Linear(2, 2), nn.Linear(2, 1)
    d.bias.requires_grad_(False)  # frozen on purpose (as the DTN's f): stays frozen
    g_before, d_before = [p.clone() for p in g.parameters()], [p.clone() for p in d.parameters()]
    x = torch.randn(4, 2)
    loss = d(g(x)).mean()
    result = PlainUpdate((g, d))("G", torch.optim.SGD(g.parameters(), lr=0.1), lambda: (loss, {}))
    assert result == Update({}, stepped=True)
    assert all(not torch.equal(a, b) for a, b in zip(g.parameters(), g_before, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(d.parameters(), d_before, strict=True))
    # the step computed no gradient for D, and handed D's weight back trainable
    assert d.weight.grad is None and d.weight.requires_grad and not d.bias.requires_grad


def _task_in_one_process() -> mock.Mock:
    task = mock.Mock(global_rank=0, current_epoch=0, global_step=0)
    task.trainer.strategy.reduce_boolean_decision = lambda decision, all: decision
    return task


def test_the_guard_skips_nonfinite_losses_undoes_batch_norm_and_stops_after_patience() -> None:
    guard, task = NonFiniteGuard(patience=2), _task_in_one_process()
    norm = nn.BatchNorm1d(3)
    clean = [b.clone() for b in norm.buffers()]
    nan = torch.tensor(float("nan"))
    for skipped in (1, 2):
        snapshot = guard.snapshot(norm)
        norm(torch.full((4, 3), float("nan")))  # the faulty batch's forward pass
        assert guard.allows(task, torch.tensor(1.0), "G")
        update = Update({}, stepped=guard.allows(task, nan, "D"))
        assert not update.stepped and guard.skipped_steps == skipped
        task.log.assert_called_with("train/skipped_steps", float(skipped), on_step=True,
                                    on_epoch=False)  # fmt: skip
        if skipped == 1:
            assert not guard.settle([Update({}), update], snapshot)
        else:
            with pytest.raises(
                TrainingDivergedError, match="D loss was non-finite in 2 consecutive"
            ):
                guard.settle([Update({}), update], snapshot)
        # running mean, variance and the batch counter are those of before the faulty batch
        assert all(torch.equal(a, b) for a, b in zip(norm.buffers(), clean, strict=True))
    assert guard.settle([Update({}), Update({})], guard.snapshot(norm))
    off = NonFiniteGuard(patience=0)
    assert off.snapshot(norm) is None and off.allows(task, nan, "D")


class _LogStepRecorder(L.LightningModule):
    """Records, in each training step, this project's choice of logging step beside
    Lightning's own (private) one."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.layer = nn.Linear(1, 1)
        self.choices: list[tuple[bool, bool]] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        lightnings = self.trainer._logger_connector.should_update_logs
        self.choices.append((loggers_write_this_step(self.trainer), lightnings))
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(self.layer(batch).sum())
        optimizer.step()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.layer.parameters(), lr=0.1)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(torch.zeros(5, 1), batch_size=1)


def _fit(root: Path, max_epochs: int, ckpt_path: Path | None = None) -> list[tuple[bool, bool]]:
    module = _LogStepRecorder()
    checkpoints = [
        ModelCheckpoint(root, "{step}", every_n_train_steps=4, save_top_k=-1),  # mid-epoch
        ModelCheckpoint(root, "end-{epoch}", save_on_train_epoch_end=True, save_top_k=-1),
    ]
    trainer = L.Trainer(
        max_epochs=max_epochs, log_every_n_steps=3, logger=False, callbacks=checkpoints,
        default_root_dir=root, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, ckpt_path=ckpt_path)
    return module.choices


def test_losses_are_logged_on_the_steps_lightning_writes_also_after_a_resume(
    tmp_path: Path,
) -> None:
    fresh = _fit(tmp_path / "fresh", max_epochs=3)
    assert [ours for ours, _ in fresh] == [(step + 1) % 3 == 0 for step in range(15)]
    assert all(ours == lightnings for ours, lightnings in fresh)
    # resumed after batch 4 (saved at the end of a batch, mid-epoch) and after epoch 1 (10)
    for name, done in (("step=4", 4), ("end-epoch=1", 10)):
        checkpoint = tmp_path / "fresh" / f"{name}.ckpt"
        resumed = _fit(tmp_path / name, max_epochs=3, ckpt_path=checkpoint)
        assert len(resumed) == 15 - done
        assert all(ours == lightnings for ours, lightnings in resumed), name
        assert any(ours for ours, _ in resumed) and not all(ours for ours, _ in resumed)


def test_rho_is_clipped_after_each_step_of_the_optimizer_that_trains_it() -> None:
    generator, other = UGATITGenerator(ngf=8, n_blocks=1, img_size=16, light=True), nn.Linear(2, 2)
    rhos = [m.rho for m in generator.modules() if isinstance(m, AdaLIN | LIN)]
    optimizers = [torch.optim.SGD(net.parameters(), lr=1.0) for net in (generator, other)]
    for optimizer in optimizers:
        clip_rho_after_steps(optimizer, [*generator.modules(), *other.modules()])
    with torch.no_grad():
        for rho, value in zip(rhos, (-0.5, 1.5, 0.25, 2.0), strict=True):
            rho.fill_(value)
    other(torch.ones(1, 2)).sum().backward()
    optimizers[1].step()  # another network's optimizer: rho untouched
    assert [float(r.detach().flatten()[0]) for r in rhos] == [-0.5, 1.5, 0.25, 2.0]
    optimizers[0].step()  # no gradients: only the clipping moves rho
    assert [float(r.detach().flatten()[0]) for r in rhos] == [0.0, 1.0, 0.25, 1.0]
