"""CycleGAN: configs and parameter counts, the objective, direction, grids, training, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from helpers import (
    ALLOW_MAX_EPOCHS,
    ONE_BATCH,
    TINY,
    cli_train_run,
    compose_run,
    read_metrics,
    run_main,
    run_tiny,
)
from pix2pix_lit.config import instantiate
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.losses import CycleGANObjective, UGATITObjective
from pix2pix_lit.networks import PatchDiscriminator
from pix2pix_lit.tasks import CycleGAN

# task=cyclegan on four 32x32 synthetic training images, small networks
CYCLE = [
    "task=cyclegan",
    "data=synthetic_unpaired",
    "data.image_size=32",
    "data.load_size=36",
    "data.crop_size=32",
    "data.num_images.train=4",
]
SMALL_NETS = ["model.ngf=8", "model.n_blocks=1"]


# tiny networks: see the fixture's docstring
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_task(tmp_path: Path, *overrides: str) -> CycleGAN:
    cfg = compose_run([*TINY, *CYCLE, *SMALL_NETS, *overrides], tmp_path)
    return instantiate(cfg.task)


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# -- configs ---------------------------------------------------------------------------------


def test_task_cyclegan_alone_selects_the_papers_networks(tmp_path: Path) -> None:
    cfg = compose_run(["task=cyclegan"], tmp_path)
    assert cfg.task_name == "cyclegan"
    assert cfg.data._target_.endswith("UnpairedImageDataModule")
    assert cfg.model._target_.endswith("ResnetGenerator") and cfg.model.n_blocks == 9
    assert cfg.discriminator.norm == "instance" and cfg.discriminator.in_channels == 3
    assert (cfg.loss.gan_mode, cfg.loss.lambda_cycle, cfg.loss.lambda_identity) == (
        "lsgan",
        10,
        5,
    )
    assert cfg.loss.pool_size == 50
    assert cfg.optim.lr == 2e-4 and list(cfg.optim.generator.betas) == [0.5, 0.999]
    task = instantiate(cfg.task)
    assert count(task.generator_ab) == count(task.generator_ba) == 11_378_179
    assert count(task.discriminator_a) == count(task.discriminator_b) == 2_764_737
    # two independent networks per role, not one shared
    assert task.generator_ab is not task.generator_ba
    first_ab, first_ba = next(task.generator_ab.parameters()), next(task.generator_ba.parameters())
    assert not torch.equal(first_ab, first_ba)
    assert isinstance(task.objective, CycleGANObjective)
    assert task.objective.identity_weight == 5.0


def test_lambda_identity_is_an_absolute_weight_in_both_unpaired_objectives() -> None:
    # one meaning per key: changing the cycle weight leaves the identity weight alone
    assert CycleGANObjective(lambda_cycle=20.0, lambda_identity=5.0).identity_weight == 5.0
    assert UGATITObjective(lambda_cycle=20.0, lambda_identity=5.0).identity_weight == 5.0


def test_command_line_choices_win_over_the_tasks(tmp_path: Path) -> None:
    cfg = compose_run(["task=cyclegan", "model=resnet6", "discriminator.norm=batch"], tmp_path)
    assert cfg.model.n_blocks == 6 and cfg.discriminator.norm == "batch"


def test_facades_cyclegan_experiment(tmp_path: Path) -> None:
    cfg = compose_run(["experiment=facades_cyclegan"], tmp_path)
    assert cfg.task._target_ == "pix2pix_lit.tasks.CycleGAN"
    assert (cfg.data.layout, cfg.data.direction, cfg.data.batch_size) == ("aligned", "BtoA", 1)
    assert (cfg.scheduler.n_epochs, cfg.scheduler.n_epochs_decay, cfg.trainer.max_epochs) == (
        100,
        100,
        200,
    )
    OmegaConf.resolve(cfg)


# -- the objective ---------------------------------------------------------------------------


def test_cycle_and_identity_losses_of_identity_generators_are_zero() -> None:
    objective = CycleGANObjective(pool_size=0)
    real_a, real_b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    outputs = objective.run_generators(nn.Identity(), nn.Identity(), real_a, real_b)
    discriminator = PatchDiscriminator(3, ndf=4, n_layers=1, norm="instance")
    _, logs = objective.generator_loss(discriminator, discriminator, outputs)
    for key in ("G_cycle_A", "G_cycle_B", "G_idt_A", "G_idt_B"):
        assert logs[key] == 0, key
    assert logs["G_GAN_A"] > 0


def test_objective_outputs_shapes_and_halved_discriminator_loss() -> None:
    objective = CycleGANObjective(gan_mode="lsgan", pool_size=2)
    g, f = nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)
    real_a, real_b = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    outputs = objective.run_generators(g, f, real_a, real_b)
    for name in ("fake_a", "fake_b", "rec_a", "rec_b", "idt_a", "idt_b"):
        assert getattr(outputs, name).shape == (2, 3, 16, 16), name
    ones = nn.Conv2d(3, 1, 1)  # a discriminator that answers D(x) = 1 everywhere
    nn.init.zeros_(ones.weight)
    nn.init.ones_(ones.bias)
    loss, logs = objective.discriminator_loss(ones, ones, outputs)
    # each D: real term (1 - 1)^2 = 0, fake term (1 - 0)^2 = 1; halved and summed over A and B
    assert logs["D_A_fake"] == logs["D_B_fake"] == 1 and logs["D_A_real"] == 0
    assert loss.item() == pytest.approx(1.0)
    assert [len(images) for images in objective.pool_state().values()] == [2, 2]


def test_objective_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="loss.conditional=true"):
        CycleGANObjective(conditional=True)
    with pytest.raises(ConfigError, match="wgangp"):
        CycleGANObjective(gan_mode="wgangp")
    with pytest.raises(ConfigError, match="loss.lambda_cycle=-1"):
        CycleGANObjective(lambda_cycle=-1)


# -- the task --------------------------------------------------------------------------------


def test_direction_picks_the_translation_network(tmp_path: Path) -> None:
    task = tiny_task(tmp_path)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert task.translation_network() is task.generator_ab
    assert task.translate(images).shape == (2, 3, 32, 32)
    task.direction = "BtoA"
    assert task.translation_network() is task.generator_ba
    assert torch.equal(task.generate(images), task.generate(images))
    with pytest.raises(ConfigError, match="task.direction='AtoC'"):
        task.direction = "AtoC"


def test_grid_columns_show_both_cycles(tmp_path: Path) -> None:
    task = tiny_task(tmp_path)
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    columns = task.grid_columns(batch)
    assert list(columns) == ["A", "G(A)", "F(G(A))", "B", "F(B)", "G(F(B))"]
    assert all(c.shape == (2, 3, 32, 32) for c in columns.values())


def test_mismatched_networks_and_losses_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"G: A -> B maps 1 -> 3 .* model.in_channels"):
        tiny_task(tmp_path, "model.in_channels=1")
    with pytest.raises(
        ConfigError, match="discriminator_a takes 6 channels .* loss.conditional=false"
    ):
        tiny_task(tmp_path, "discriminator.in_channels=6")
    with pytest.raises(ConfigError, match="CycleGAN trains a CycleGANObjective, not a Pix2Pix"):
        tiny_task(tmp_path, "loss=vanilla")


def test_fast_dev_run_composed_like_the_command_line(tmp_path: Path) -> None:
    metrics = run_tiny(tmp_path, *CYCLE, "+trainer.fast_dev_run=true", model=SMALL_NETS)
    for key in ("G_GAN_A", "G_GAN_B", "G_cycle_A", "G_idt_B", "D_A_real", "D_B_fake"):
        assert math.isfinite(metrics[f"train/{key}_epoch"]), key
    assert 0 < metrics["val/L1"] < 2


def test_checkpoint_resumes_exactly_and_rebuilds_the_task(tmp_path: Path) -> None:
    # A pool of 2 is full after the first epoch, so the second draws from its history.
    common = (
        *CYCLE,
        "scheduler.n_epochs=1",
        "scheduler.n_epochs_decay=1",
        "seed=3",
        "loss.pool_size=2",
    )
    run_tiny(tmp_path, *common, out="full", model=SMALL_NETS)
    run_tiny(tmp_path, *common, "trainer.max_epochs=1", out="part", model=SMALL_NETS)
    part = tmp_path / "part" / "checkpoints" / "last.ckpt"
    run_tiny(
        tmp_path, *common, f"ckpt_path={part}", ALLOW_MAX_EPOCHS, out="resumed", model=SMALL_NETS
    )
    full = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == full["epoch"] == 1
    assert resumed["global_step"] == full["global_step"] == 2 * 2 * 2  # 2 optimizers
    assert {int(r["epoch"]) for r in read_metrics(tmp_path / "resumed") if r.get("epoch")} == {1}
    for key, value in full["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    for pool, images in full["image_pools"].items():
        assert all(map(torch.equal, images, resumed["image_pools"][pool])), pool
    # evaluate/predict/export rebuild the task from the config stored in the checkpoint
    task = instantiate(OmegaConf.create(resumed["pix2pix_lit_config"]["task"]))
    task.load_state_dict(resumed["state_dict"])
    assert isinstance(task, CycleGAN) and task.translate(torch.zeros(1, 3, 32, 32)).shape[1] == 3


@pytest.mark.slow
def test_cli_trains_cyclegan(tmp_path: Path) -> None:
    run = cli_train_run(tmp_path, *CYCLE, *SMALL_NETS)
    assert run.parent == tmp_path / "logs" / "cyclegan" / "runs"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "images" / "epoch_000.png").is_file()


def test_a_nonfinite_batch_is_skipped_and_leaves_finite_weights(tmp_path: Path) -> None:
    injector = ["+callbacks.fault._target_=helpers.NanInputsFromBatch",
                "+callbacks.fault.start=1", "+callbacks.fault.stop=2"]  # fmt: skip
    metrics = run_tiny(tmp_path, *CYCLE, *injector, "+trainer.fast_dev_run=3", model=SMALL_NETS)
    assert metrics["train/skipped_steps"] >= 1
    assert all(math.isfinite(v) for k, v in metrics.items() if k.startswith("val/"))


def test_evaluate_predict_export_take_an_unpaired_checkpoint(tmp_path: Path) -> None:
    from PIL import Image

    from pix2pix_lit import evaluate, export, predict

    run_tiny(tmp_path, *CYCLE, *ONE_BATCH, "logger=none", model=SMALL_NETS)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    logs = f"paths.log_dir={tmp_path / 'logs'}"
    scores = {}
    for direction in ("AtoB", "BtoA"):
        out = tmp_path / f"eval_{direction}"
        assert run_main(evaluate.main, f"ckpt_path={ckpt}", f"output_dir={out}", logs,
                        f"direction={direction}") is None  # fmt: skip
        report = json.loads((out / "metrics.json").read_text())
        assert report["count"] > 0 and math.isfinite(report["metrics"]["L1"])
        scores[direction] = report["metrics"]["L1"]
    assert scores["AtoB"] != scores["BtoA"]  # G and F were evaluated, each on its own target
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.new("RGB", (40, 28), (200, 30, 30)).save(inputs / "odd.png")
    assert run_main(predict.main, f"ckpt_path={ckpt}", f"input_dir={inputs}",
                    f"output_dir={tmp_path / 'pred'}", logs) is None  # fmt: skip
    (written,) = (tmp_path / "pred").glob("odd*")
    assert Image.open(written).size == (40, 28)
    out = tmp_path / "exported.pt"
    assert run_main(export.main, f"ckpt_path={ckpt}", "format=torchscript", f"output={out}",
                    logs) is None  # fmt: skip
    assert out.is_file()
    message = run_main(export.main, f"ckpt_path={ckpt}", "direction=CtoD", logs)
    assert message is not None and "task.direction='CtoD'" in message
