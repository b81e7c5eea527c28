"""The Domain Transfer Network: its losses, the frozen f, bad input, training, resume, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from helpers import ALLOW_MAX_EPOCHS, cli, compose_run, read_metrics, run_main
from pix2pix_lit.config import instantiate
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.losses import DTNObjective
from pix2pix_lit.losses.dtn import total_variation
from pix2pix_lit.tasks import DTN
from pix2pix_lit.tasks.dtn import FrozenNetwork
from pix2pix_lit.training.run import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LOG3, LOG2 = math.log(3), math.log(2)
RUN = ["trainer=cpu", "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0"]
# 16x16 digits, 40 source images, tiny networks: a training step takes milliseconds
SOURCE = ["data.num_images.train=40", "data.num_images.test=20", "data.image_size=16"]
CLASSIFIER = ["task=digit_classifier", "model.widths=[8,8,8]", "model.features=16",
              "data.batch_size=10", "scheduler.n_epochs=1", "trainer.limit_train_batches=4"]  # fmt: skip
DTN_DATA = ["data.source.num_images.train=40", "data.source.num_images.test=20",
            "data.source.image_size=16", "data.target.image_size=16", "data.batch_size=10"]  # fmt: skip
DTN_NETS = ["task=dtn", "model.in_channels=16", "model.ngf=4", "discriminator.ndf=4"]
# C_T: two epochs over the 1,438 UCI training digits (about 90% test accuracy)
TARGET = ["data=uci_digits", "data.image_size=16", "data.batch_size=32", "scheduler.n_epochs=2",
          "trainer.limit_train_batches=null"]  # fmt: skip


class ConstantLogits(nn.Module):
    """A discriminator answering the same logits for every image."""

    def __init__(self, *logits: float) -> None:
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x: Tensor) -> Tensor:
        return self.logits.expand(x.shape[0], -1)


def images(*shape: int, seed: int = 0) -> Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """last.ckpt of the source classifier (f) and of the target one (C_T), trained briefly."""
    root = tmp_path_factory.mktemp("classifiers")
    data = f"paths.data_dir={root / 'data'}"
    for name, overrides in (("f", SOURCE), ("c_t", TARGET)):
        train(compose_run([*CLASSIFIER, *RUN, *overrides, data, "logger=none"], root / name))
    return {name: root / name / "checkpoints" / "last.ckpt" for name in ("f", "c_t")}


def dtn_overrides(classifiers: dict[str, Path], tmp_path: Path) -> list[str]:
    return [*DTN_NETS, *DTN_DATA, *RUN, f"paths.data_dir={classifiers['f'].parents[2] / 'data'}",
            f"task.encoder_ckpt={classifiers['f']}", f"task.evaluator_ckpt={classifiers['c_t']}",
            f"paths.log_dir={tmp_path / 'logs'}"]  # fmt: skip


def dtn_task(classifiers: dict[str, Path], tmp_path: Path, *overrides: str) -> DTN:
    cfg = compose_run([*dtn_overrides(classifiers, tmp_path), *overrides], tmp_path / "run")
    return instantiate(cfg.task)


# -- the losses on constructed values ---------------------------------------------------------


def test_ternary_discriminator_loss_is_the_three_cross_entropies() -> None:
    objective = DTNObjective()
    fake_s, fake_t, real_t = images(2, 1, 8, 8), images(2, 1, 8, 8, seed=1), images(2, 1, 8, 8)
    loss, logs = objective.discriminator_loss(ConstantLogits(0, 0, 0), fake_s, fake_t, real_t)
    assert loss.item() == pytest.approx(3 * LOG3)  # each term −log(1/3)
    # D sure of the right class for G(s) (class 1) and unsure elsewhere
    loss, logs = objective.discriminator_loss(ConstantLogits(10, 0, 0), fake_s, fake_t, real_t)
    right = -torch.log_softmax(torch.tensor([10.0, 0, 0]), 0)
    assert logs["D_fake_source"].item() == pytest.approx(right[0].item())
    assert logs["D_fake_target"].item() == pytest.approx(right[1].item())
    assert logs["D_real_target"].item() == pytest.approx(right[2].item())
    assert loss.item() == pytest.approx(right.sum().item())


def test_generator_loss_weights_gang_const_tid_tv() -> None:
    objective = DTNObjective(alpha=2.0, beta=3.0, gamma=5.0)
    f = nn.Flatten()  # an "encoder" whose features are the pixels
    source = images(2, 1, 4, 4)
    fake_s, real_t, fake_t = (
        images(2, 1, 4, 4, seed=1),
        images(2, 1, 4, 4, seed=2),
        images(2, 1, 4, 4, seed=3),
    )
    loss, logs = objective.generator_loss(
        ConstantLogits(0, 0, 0), f, f(source), fake_s, real_t, fake_t
    )
    const = (fake_s - source).square().mean()
    tid = (fake_t - real_t).square().mean()
    tv = total_variation(torch.cat([fake_s, fake_t]))
    assert logs["G_GANG"].item() == pytest.approx(2 * LOG3)
    assert logs["G_CONST"].item() == pytest.approx(const.item())
    assert logs["G_TID"].item() == pytest.approx(tid.item())
    expected = 2 * LOG3 + 2 * const + 3 * tid + 5 * tv
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # a zero weight leaves its term out
    _, logs = DTNObjective(alpha=0, beta=0).generator_loss(
        ConstantLogits(0, 0, 0), f, f(source), fake_s, real_t, fake_t
    )
    assert set(logs) == {"G", "G_GANG"}


def test_gang_pushes_both_fakes_to_the_real_class() -> None:
    objective = DTNObjective(alpha=0, beta=0)
    x = images(3, 1, 8, 8)
    loss, _ = objective.generator_loss(ConstantLogits(0, 0, 20), nn.Flatten(), x, x, x, x)
    assert loss.item() < 1e-6  # D says "real target" for G(s) and G(t): nothing to gain
    loss, _ = objective.generator_loss(ConstantLogits(20, 0, 0), nn.Flatten(), x, x, x, x)
    assert loss.item() == pytest.approx(2 * 20, rel=1e-3)


def test_binary_discriminator_losses() -> None:
    objective = DTNObjective(alpha=0, beta=0, discriminator="binary")
    assert objective.num_outputs == 1
    x = images(2, 1, 8, 8)
    loss_d, _ = objective.discriminator_loss(ConstantLogits(0), x, x, x)
    loss_g, _ = objective.generator_loss(ConstantLogits(0), nn.Flatten(), x, x, x, x)
    assert loss_d.item() == pytest.approx(3 * LOG2) and loss_g.item() == pytest.approx(2 * LOG2)
    loss_d, logs = objective.discriminator_loss(ConstantLogits(30), x, x, x)
    assert logs["D_real_target"].item() < 1e-6 and logs["D_fake_source"].item() == pytest.approx(30)


def test_total_variation_of_a_step_and_a_flat_image() -> None:
    step = torch.zeros(1, 1, 3, 3)
    step[..., 2] = 1.0  # a vertical edge between columns 1 and 2
    # positions (i, j) with i, j < 2: dx = 1 at j = 1 (two rows), 0 elsewhere; dy = 0
    assert total_variation(step).item() == pytest.approx(2 / 4, abs=1e-4)
    flat = torch.zeros(2, 3, 5, 5, requires_grad=True)
    total_variation(flat).backward()
    assert torch.isfinite(flat.grad).all()  # finite gradient where sqrt(0) would give NaN


def test_negative_weights_and_unknown_modes_are_one_line_errors() -> None:
    for key in ("alpha", "beta", "gamma"):
        with pytest.raises(ConfigError, match=rf"loss.{key}=-1 must be >= 0"):
            DTNObjective(**{key: -1})
    with pytest.raises(ConfigError, match="loss.discriminator='quaternary'"):
        DTNObjective(discriminator="quaternary")


# -- the task ----------------------------------------------------------------------------------


def test_f_is_frozen_in_training(classifiers: dict[str, Path], tmp_path: Path) -> None:
    task = dtn_task(classifiers, tmp_path)
    assert task.generator.encoder is task.f
    assert all(not p.requires_grad for p in task.f.parameters())
    task.train()
    assert not task.f.training and not any(m.training for m in task.f.modules())
    assert task.generator.decoder.training
    metrics = train(compose_run([*dtn_overrides(classifiers, tmp_path), "+trainer.fast_dev_run=1"],
                                tmp_path / "run"))  # fmt: skip
    assert math.isfinite(metrics["train/G_CONST_epoch"]) and 0 <= metrics["val/accuracy"] <= 1


def test_training_steps_leave_f_and_its_statistics_unchanged(
    classifiers: dict[str, Path], tmp_path: Path
) -> None:
    import lightning as L

    from pix2pix_lit.data import DigitTransferDataModule

    cfg = compose_run(dtn_overrides(classifiers, tmp_path), tmp_path / "run")
    task: DTN = instantiate(cfg.task)
    data: DigitTransferDataModule = instantiate(cfg.data)
    frozen = {k: v.clone() for k, v in task.f.state_dict().items()}
    evaluator = {k: v.clone() for k, v in task.evaluator.state_dict().items()}
    decoder = [p.clone() for p in task.generator.decoder.parameters()]
    trainer = L.Trainer(max_steps=4, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    # Lightning keeps each module's mode from the start of fit: put the task in train mode
    # first, as any code calling .train() on it would
    task.train()
    trainer.fit(task, datamodule=data)
    for key, value in task.f.state_dict().items():
        assert torch.equal(value, frozen[key]), key  # weights and running_mean/var/count
    for key, value in task.evaluator.state_dict().items():
        assert torch.equal(value, evaluator[key]), key
    assert all(p.grad is None for p in task.f.parameters())
    assert not all(map(torch.equal, decoder, task.generator.decoder.parameters()))


def test_encoder_from_scratch_trains_with_g(classifiers: dict[str, Path], tmp_path: Path) -> None:
    task = dtn_task(classifiers, tmp_path, "task.train_encoder=true")
    encoder = task.generator.encoder
    assert encoder is not task.f and all(p.requires_grad for p in encoder.parameters())
    assert not torch.equal(next(encoder.parameters()), next(task.f.parameters()))
    trained = {id(p) for p in task.generator_parameters()}
    assert {id(p) for p in encoder.parameters()} <= trained
    assert not {id(p) for p in task.f.parameters()} & trained


def test_networks_shapes_and_grid(classifiers: dict[str, Path], tmp_path: Path) -> None:
    task = dtn_task(classifiers, tmp_path)
    assert task.discriminator.num_outputs == 3
    assert (
        dtn_task(classifiers, tmp_path, "loss.discriminator=binary").discriminator.num_outputs == 1
    )
    source, target = images(2, 3, 16, 16), images(2, 1, 16, 16)
    assert task.translate(source).shape == task.translate(target).shape == (2, 1, 16, 16)
    columns = task.grid_columns({"A": source, "B": target})
    assert list(columns) == ["source", "G(source)", "target", "G(target)"]
    assert columns["G(target)"].shape == (2, 1, 16, 16)


def test_bad_checkpoints_and_sizes_are_one_line_errors(
    classifiers: dict[str, Path], tmp_path: Path
) -> None:
    def error(*overrides: str) -> str:
        with pytest.raises(ConfigError) as info:
            dtn_task(classifiers, tmp_path, *overrides)
        assert "\n" not in str(info.value)
        return str(info.value)

    assert error("task.encoder_ckpt=null").startswith("task.encoder_ckpt is not set")
    missing = tmp_path / "nothing.ckpt"
    assert f"task.encoder_ckpt={missing} does not exist" in error(f"task.encoder_ckpt={missing}")
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    assert "task.evaluator_ckpt: ckpt_path=" in error(f"task.evaluator_ckpt={junk}")
    other = tmp_path / "pix2pix.ckpt"
    torch.save({"pix2pix_lit_config": {"task": {"_target_": "pix2pix_lit.tasks.Pix2Pix"}},
                "state_dict": {}}, other)  # fmt: skip
    assert "is a checkpoint of pix2pix_lit.tasks.Pix2Pix, not of a digit classifier" in error(
        f"task.encoder_ckpt={other}"
    )
    shrunk = tmp_path / "shrunk.ckpt"
    checkpoint = torch.load(classifiers["f"], weights_only=True)
    checkpoint["state_dict"]["network.head.weight"] = torch.zeros(10, 3)
    torch.save(checkpoint, shrunk)
    assert "its weights do not fit" in error(f"task.encoder_ckpt={shrunk}")
    # C_T (grey) as f for colour sources; f trained at 16x16 used on 24x24 images
    assert "takes 1-channel images but data.source.channels=3" in error(
        f"task.encoder_ckpt={classifiers['c_t']}"
    )
    assert "was trained on 16x16 images but data.source.image_size=24" in error(
        "data.source.image_size=24"
    )
    assert "model.in_channels=32 but f of task.encoder_ckpt=" in error("model.in_channels=32")


# -- training end to end ----------------------------------------------------------------------


def test_validation_reports_the_papers_metric_and_its_references(
    classifiers: dict[str, Path], tmp_path: Path
) -> None:
    metrics = train(compose_run([*dtn_overrides(classifiers, tmp_path), "scheduler.n_epochs=1",
                                 "trainer.limit_train_batches=2"], tmp_path / "run"))  # fmt: skip
    for name in ("accuracy", "accuracy_target", "accuracy_grayscale_source", "accuracy_f_source"):
        assert 0 <= metrics[f"val/{name}"] <= 1, name
    # the T classifier sees the target test images: far above chance even after a short training
    assert metrics["val/accuracy_target"] > 0.3
    run = tmp_path / "run"
    assert (run / "images" / "epoch_000.png").is_file()
    assert list((run / "checkpoints").glob("best_epoch000.ckpt"))  # chosen by val/accuracy


def test_resumed_run_equals_uninterrupted_run(classifiers: dict[str, Path], tmp_path: Path) -> None:
    common = [*dtn_overrides(classifiers, tmp_path), "scheduler.n_epochs=2", "seed=5",
              "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]  # fmt: skip
    train(compose_run(common, tmp_path / "full"))
    train(compose_run([*common, "trainer.max_epochs=1"], tmp_path / "part"))
    part = tmp_path / "part" / "checkpoints" / "last.ckpt"
    train(compose_run([*common, f"ckpt_path={part}", ALLOW_MAX_EPOCHS], tmp_path / "resumed"))
    full = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == full["epoch"] == 1
    assert resumed["global_step"] == full["global_step"] == 2 * 2 * 2  # 2 optimizers
    for key, value in full["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    assert {int(r["epoch"]) for r in read_metrics(tmp_path / "resumed") if r.get("epoch")} == {1}
    # evaluate scores a DTN checkpoint by its accuracies on the test splits
    from pix2pix_lit import evaluate

    ckpt = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    out, logs = tmp_path / "eval", f"paths.log_dir={tmp_path / 'logs'}"
    assert run_main(evaluate.main, f"ckpt_path={ckpt}", f"output_dir={out}", logs) is None
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["metrics"]) == {
        "accuracy", "accuracy_target", "accuracy_grayscale_source", "accuracy_f_source"
    }  # fmt: skip


def test_classifier_reports_test_accuracy(classifiers: dict[str, Path], tmp_path: Path) -> None:
    data = f"paths.data_dir={classifiers['f'].parents[2] / 'data'}"
    metrics = train(compose_run([*CLASSIFIER, *RUN, *TARGET, data, "test=true"], tmp_path / "run"))
    assert 0.3 < metrics["test/accuracy"] <= 1 and "val/accuracy" in metrics
    assert isinstance(FrozenNetwork(nn.Linear(2, 2)).train(), FrozenNetwork)


@pytest.mark.slow
def test_the_three_commands_of_the_readme(tmp_path: Path) -> None:
    """Source classifier, target classifier, DTN: each through the command line."""
    data = [f"paths.data_dir={tmp_path / 'data'}", f"paths.log_dir={tmp_path / 'logs'}"]
    for overrides in (SOURCE, TARGET):
        out = cli(*CLASSIFIER, *RUN, *overrides, *data, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
    source_run, target_run = sorted((tmp_path / "logs" / "digit_classifier" / "runs").iterdir())
    out = cli(*DTN_NETS, *DTN_DATA, *RUN, *data, "scheduler.n_epochs=1",
              "trainer.limit_train_batches=2",
              f"task.encoder_ckpt={source_run / 'checkpoints' / 'last.ckpt'}",
              f"task.evaluator_ckpt={target_run / 'checkpoints' / 'last.ckpt'}", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "dtn" / "runs").iterdir()
    assert "val/accuracy" in read_metrics(run)[-1] and (run / "images" / "epoch_000.png").is_file()
    out = cli(*DTN_NETS, *DTN_DATA, *data, "task.encoder_ckpt=missing.ckpt", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith(
        "error: task.evaluator_ckpt is not set"
    ) or ("error: task.encoder_ckpt=missing.ckpt does not exist" in out.stderr)
