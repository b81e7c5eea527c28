"""U-GAT-IT as a task: configs, the objective, ρ clipping, attention grids, training, resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from helpers import ALLOW_MAX_EPOCHS, TINY, cli_train_run, compose_run, run_tiny
from pix2pix_lit.config import instantiate
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.losses import UGATITObjective
from pix2pix_lit.losses.cam import domain_classification_loss
from pix2pix_lit.networks import LIN, AdaLIN, GlobalLocalDiscriminator, UGATITGenerator
from pix2pix_lit.tasks import UGATIT

# task=ugatit on four 32x32 synthetic training images; the global discriminator gets 5
# layers (its default 7 needs inputs of at least 256 pixels)
UGATIT_TINY = [
    "task=ugatit",
    "data=synthetic_unpaired",
    "data.image_size=32",
    "data.load_size=36",
    "data.crop_size=32",
    "data.num_images.train=4",
    "discriminator.global_layers=5",
    "discriminator.local_layers=4",
]
LIGHT = ["model=ugatit_light", "model.ngf=8", "model.n_blocks=1"]


# tiny networks: see the fixture's docstring
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_task(tmp_path: Path, *overrides: str) -> UGATIT:
    cfg = compose_run([*TINY, *UGATIT_TINY, *LIGHT, *overrides], tmp_path)
    return instantiate(cfg.task)


def test_task_ugatit_alone_selects_the_papers_recipe(tmp_path: Path) -> None:
    cfg = compose_run(["task=ugatit"], tmp_path)
    assert cfg.task_name == "ugatit" and cfg.task._target_ == "pix2pix_lit.tasks.UGATIT"
    assert cfg.model._target_.endswith("UGATITGenerator") and cfg.model.light is False
    assert cfg.model.img_size == cfg.data.crop_size == 256
    assert cfg.discriminator._target_.endswith("GlobalLocalDiscriminator")
    assert cfg.discriminator.in_channels == 3
    assert (cfg.discriminator.global_layers, cfg.discriminator.local_layers) == (7, 5)
    loss = cfg.loss
    assert (loss.lambda_gan, loss.lambda_cycle, loss.lambda_identity, loss.lambda_cam) == (
        1,
        10,
        10,
        1000,
    )
    for side in (cfg.optim.generator, cfg.optim.discriminator):
        assert side.lr == 1e-4 and side.weight_decay == 1e-4 and list(side.betas) == [0.5, 0.999]
    cfg = compose_run(["experiment=facades_ugatit", "model=ugatit_light"], tmp_path)
    assert cfg.task_name == "facades_ugatit" and cfg.model.light is True
    assert (cfg.data.layout, cfg.data.direction) == ("aligned", "BtoA")
    OmegaConf.resolve(cfg)


def test_cam_loss_rewards_telling_source_from_target() -> None:
    confident = torch.full((2, 2), 20.0)
    assert domain_classification_loss(confident, -confident) < 1e-6
    assert domain_classification_loss(-confident, confident) > 30
    assert domain_classification_loss(torch.zeros(2, 2), torch.zeros(2, 2)) == pytest.approx(
        2 * math.log(2)
    )


def test_objective_terms_and_weights() -> None:
    torch.manual_seed(0)
    objective = UGATITObjective()
    assert objective.identity_weight == 10 and objective.lambda_cam == 1000
    g = UGATITGenerator(ngf=4, n_blocks=1, img_size=32, light=True)
    f = UGATITGenerator(ngf=4, n_blocks=1, img_size=32, light=True)
    # eval(): no power iteration, so spectral norm gives the same D at every call
    d = GlobalLocalDiscriminator(3, ndf=4, global_layers=4, local_layers=3).eval()
    real_a, real_b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    outputs = objective.run_generators(g, f, real_a, real_b)
    assert outputs.cam_g is not None and outputs.cam_g[0].shape == (2, 2)
    loss, logs = objective.generator_loss(d, d, outputs)
    expected = (
        logs["G_GAN_A"]
        + logs["G_GAN_B"]
        + 10 * (logs["G_cycle_A"] + logs["G_cycle_B"] + logs["G_idt_A"] + logs["G_idt_B"])
        + 1000 * (logs["G_CAM_G"] + logs["G_CAM_F"])
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # the adversarial loss covers the patch and CAM logits of both scales, each weighted 1
    four_terms = [objective.gan(p, True) for p in d(outputs.fake_a)]
    assert logs["G_GAN_A"].item() == pytest.approx(sum(four_terms).item(), rel=1e-5)
    loss_d, logs_d = objective.discriminator_loss(d, d, outputs)
    parts = ("D_A_real", "D_A_fake", "D_B_real", "D_B_fake")
    assert loss_d.item() == pytest.approx(sum(logs_d[k] for k in parts).item(), rel=1e-5)


def test_cam_generators_are_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model=ugatit or ugatit_light"):
        tiny_task(tmp_path, "model=resnet6", "model.ngf=8")
    with pytest.raises(ConfigError, match="UGATIT trains a UGATITObjective"):
        tiny_task(tmp_path, "loss=cyclegan")


def test_grid_shows_attention_maps_beside_the_translations(tmp_path: Path) -> None:
    task = tiny_task(tmp_path)
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    columns = task.grid_columns(batch)
    assert list(columns) == ["A", "G(A)", "CAM G(A)", "F(G(A))", "B", "F(B)", "CAM F(B)", "G(F(B))"]
    for name in ("CAM G(A)", "CAM F(B)"):
        heatmap = columns[name]
        assert heatmap.shape == (2, 1, 32, 32)
        assert heatmap.min() == pytest.approx(-1) and heatmap.max() == pytest.approx(1)


def test_rho_stays_in_unit_interval_after_a_huge_step(tmp_path: Path) -> None:
    cfg = compose_run(
        [*TINY, *UGATIT_TINY, *LIGHT, f"paths.data_dir={tmp_path}", "optim.lr=10.0"],
        tmp_path / "run",
    )
    task = instantiate(cfg.task)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[], fast_dev_run=True)
    trainer.fit(task, datamodule=instantiate(cfg.data))
    for generator in (task.generator_ab, task.generator_ba):
        rhos = torch.cat(
            [m.rho.flatten() for m in generator.modules() if isinstance(m, AdaLIN | LIN)]
        )
        assert rhos.min() >= 0 and rhos.max() <= 1
        assert ((rhos == 0) | (rhos == 1)).any()  # clipped, not merely left in range


def test_fast_dev_run_of_the_full_model(tmp_path: Path) -> None:
    full = ["model=ugatit", "model.ngf=4", "model.n_blocks=1"]
    metrics = run_tiny(tmp_path, *UGATIT_TINY, "+trainer.fast_dev_run=true", model=full)
    for key in ("G_GAN_A", "G_cycle_B", "G_idt_A", "G_CAM_G", "G_CAM_F", "D_B_real"):
        assert math.isfinite(metrics[f"train/{key}_epoch"]), key
    assert 0 < metrics["val/L1"] < 2


def test_checkpoint_resumes_for_a_second_epoch(tmp_path: Path) -> None:
    common = (*UGATIT_TINY, "scheduler.n_epochs=1", "scheduler.n_epochs_decay=1")
    run_tiny(tmp_path, *common, "trainer.max_epochs=1", out="part", model=LIGHT)
    part = torch.load(tmp_path / "part" / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt = tmp_path / "part" / "checkpoints" / "last.ckpt"
    run_tiny(tmp_path, *common, f"ckpt_path={ckpt}", ALLOW_MAX_EPOCHS, out="resumed", model=LIGHT)
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert (part["epoch"], resumed["epoch"]) == (0, 1)
    assert resumed["global_step"] == 2 * part["global_step"]
    task = instantiate(OmegaConf.create(resumed["pix2pix_lit_config"]["task"]))
    task.load_state_dict(resumed["state_dict"])
    assert isinstance(task, UGATIT)


@pytest.mark.slow
def test_cli_trains_ugatit(tmp_path: Path) -> None:
    run = cli_train_run(tmp_path, *UGATIT_TINY, *LIGHT)
    assert run.parent == tmp_path / "logs" / "ugatit" / "runs"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "images" / "epoch_000.png").is_file()
