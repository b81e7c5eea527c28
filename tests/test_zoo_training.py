"""Every generator, discriminator and GAN mode trains for a step through the training config.

Each case composes the same config the command line does (``python -m pix2pix_lit.train
model=... discriminator=... loss=...``) with small widths, and runs ``fast_dev_run``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from helpers import TINY, TINY_UNET, compose_run, run_tiny
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks import AdaLIN

SMALL_DATA_128 = ["data.image_size=128", "data.load_size=136", "data.crop_size=128"]
SMALL_DATA_256 = [
    "data.image_size=256",
    "data.load_size=256",
    "data.crop_size=256",
    "data.batch_size=1",
]

GENERATORS = {
    "unet256": ["model.num_downs=6", "model.ngf=8"],
    "unet128": ["model.num_downs=6", "model.ngf=8"],
    "encdec256": ["model.num_downs=6", "model.ngf=8"],
    "resnet9": ["model.ngf=8"],
    "resnet6": ["model.ngf=8"],
    "ugatit": ["model.ngf=4", "model.n_blocks=1"],
    "ugatit_light": ["model.ngf=8", "model.n_blocks=1"],
}
DISCRIMINATORS = {
    "patch70": [],
    "patch16": [],
    "pixel": [],
    "image286": [*SMALL_DATA_128, "model.num_downs=7"],
    "multiscale": ["discriminator.num_scales=2", "loss.lambda_fm=10"],
    "ugatit": [*SMALL_DATA_256, "model.num_downs=8", "model.ngf=4"],
}


def fast_dev_run(tmp_path: Path, *overrides: str, model: list[str] = TINY_UNET) -> dict[str, float]:
    return run_tiny(tmp_path, *overrides, "+trainer.fast_dev_run=true", model=model)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_each_generator_trains(name: str, tmp_path: Path) -> None:
    metrics = fast_dev_run(tmp_path, model=[f"model={name}", *GENERATORS[name]])
    assert math.isfinite(metrics["train/G_L1_epoch"]) and math.isfinite(
        metrics["train/D_fake_epoch"]
    )
    assert 0 < metrics["val/L1"] < 2


@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
def test_each_discriminator_trains(name: str, tmp_path: Path) -> None:
    metrics = fast_dev_run(
        tmp_path, f"discriminator={name}", "discriminator.ndf=8", *DISCRIMINATORS[name]
    )
    assert math.isfinite(metrics["train/G_GAN_epoch"]) and math.isfinite(
        metrics["train/D_real_epoch"]
    )
    if name == "multiscale":
        assert metrics["train/G_FM_epoch"] > 0


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge", "wgangp"])
def test_each_gan_mode_trains(mode: str, tmp_path: Path) -> None:
    metrics = fast_dev_run(tmp_path, f"loss={mode}")
    assert all(math.isfinite(v) for k, v in metrics.items() if k.startswith("train/"))
    assert ("train/D_GP_epoch" in metrics) == (mode == "wgangp")


def test_unconditional_gan_row_builds_a_three_channel_discriminator(tmp_path: Path) -> None:
    metrics = fast_dev_run(tmp_path, "loss.conditional=false", "loss.lambda_l1=0")
    assert math.isfinite(metrics["train/G_GAN_epoch"])
    assert metrics["train/G_L1_epoch"] > 0  # still measured, with weight 0


def test_ugatit_cam_loss_and_rho_clipping(tmp_path: Path) -> None:
    ugatit = ["model=ugatit_light", "model.ngf=8", "model.n_blocks=1"]
    metrics = fast_dev_run(tmp_path, "loss.lambda_cam=1000", model=ugatit)
    assert metrics["train/G_CAM_epoch"] > 0
    # A huge learning rate pushes rho far out of [0, 1]; the task clips it after the G step.
    cfg = compose_run(
        [*TINY, *ugatit, f"paths.data_dir={tmp_path}", "loss.lambda_cam=1000", "optim.lr=10.0"],
        tmp_path / "run2",
    )
    task = instantiate(cfg.task)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[], fast_dev_run=True)
    trainer.fit(task, datamodule=instantiate(cfg.data))
    rhos = torch.cat([m.rho.flatten() for m in task.generator.modules() if isinstance(m, AdaLIN)])
    assert rhos.min() >= 0 and rhos.max() <= 1
    assert (rhos == 0).any() or (rhos == 1).any()  # it was clipped, not merely left in range


def test_cam_loss_needs_a_cam_generator(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model=ugatit"):
        fast_dev_run(tmp_path, "loss.lambda_cam=1")
