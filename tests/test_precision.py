"""Mixed precision in manual optimization: the fp16 GradScaler path with both optimizers.

Lightning maps ``trainer.precision=16-mixed`` on a CPU to bf16-mixed, but torch runs fp16
autocast and a GradScaler on the CPU, and Lightning's ``MixedPrecision`` plugin accepts
``device="cpu"``: passing the plugin runs the very code path of 16-mixed on a GPU (scale the
loss, unscale, skip steps with inf/NaN gradients, update the scale) on the CPU.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from helpers import TINY, TINY_UNET, compose_run, run_tiny
from pix2pix_lit.errors import TrainingDivergedError
from pix2pix_lit.training.run import train


def fp16_on_cpu(scaler: bool = True, init_scale: float = 2.0**16) -> list[str]:
    """Overrides: Lightning's 16-mixed plugin on the CPU, with a working or disabled scaler
    (torch's defaults otherwise)."""
    plugin = (
        "{_target_: lightning.pytorch.plugins.MixedPrecision, precision: 16-mixed, device: cpu, "
        "scaler: {_target_: torch.amp.GradScaler, device: cpu, "
        f"enabled: {str(scaler).lower()}, init_scale: {init_scale}}}}}"
    )
    return ["trainer.precision=null", f"+trainer.plugins=[{plugin}]"]


# fp16 convolutions are slow on a CPU: 32x32 pairs and a 5-level U-Net keep this quick.
SMALL = ["data.image_size=32", "data.load_size=36", "data.crop_size=32", "model.num_downs=5"]
# λ_L1 = 1e6 gives gradients that overflow fp16 (max 65504) in the generator's backward
# pass: without a scaler they reach Adam and turn the weights into NaN; the scaler skips those
# steps and backs off, to a scale below 1 here, until the generator steps again. A small
# initial scale (8 instead of 2^16) spares a dozen skipped steps.
OVERFLOWING = [
    *SMALL,
    "loss.lambda_l1=1e6",
    "data.num_images.train=24",
    "trainer.max_epochs=1",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
]
BATCHES = 12  # 24 pairs, batch 2


def test_fp16_scaler_skips_overflowing_steps_of_both_optimizers(tmp_path: Path) -> None:
    metrics = run_tiny(tmp_path, *fp16_on_cpu(init_scale=8.0), *OVERFLOWING)
    assert all(math.isfinite(v) for v in metrics.values())
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == BATCHES
    for key, value in ckpt["state_dict"].items():
        assert torch.isfinite(value.float()).all(), key
    # the scaler met overflows and backed off, and its state is checkpointed
    assert ckpt["MixedPrecision"]["scale"] < 1
    # Adam counts only the steps the scaler let through: the discriminator stepped on every
    # batch, the generator (whose gradients overflowed) once the scale had come down
    steps_g, steps_d = (int(s["state"][0]["step"]) for s in ckpt["optimizer_states"])
    assert 0 < steps_g < BATCHES and steps_d == BATCHES


def test_fp16_without_scaler_diverges_on_the_same_run(tmp_path: Path) -> None:
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        run_tiny(tmp_path, *fp16_on_cpu(scaler=False), *OVERFLOWING)


def test_fp16_with_gradient_clipping(tmp_path: Path) -> None:
    # clipping runs after the scaler's unscale (on_before_optimizer_step), not before it
    metrics = run_tiny(
        tmp_path, *fp16_on_cpu(), *SMALL, "task.clip_grad_norm=1.0", "+trainer.fast_dev_run=2"
    )
    assert all(math.isfinite(v) for k, v in metrics.items() if k.startswith("train/"))


def test_16_mixed_on_cpu_means_bf16_in_lightning(tmp_path: Path) -> None:
    cfg = compose_run([*TINY, *TINY_UNET, "trainer.precision=16-mixed"], tmp_path)
    with pytest.warns(UserWarning, match="Using `precision='bf16-mixed'` instead"):
        trainer = instantiate(cfg.trainer, logger=False)
    assert trainer.precision == "bf16-mixed"


def train_on_facades(
    tmp_path: Path, facades_root: Path, steps: int, *overrides: str
) -> dict[str, float]:
    """``steps`` training steps on the real facades; every logged value must be finite."""
    cfg = compose_run(
        [
            f"paths.data_dir={facades_root.parent}",
            "data.num_workers=0",
            "data.verify_images=false",
            "trainer.max_epochs=1",
            f"trainer.limit_train_batches={steps}",
            "trainer.limit_val_batches=2",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            *overrides,
        ],
        tmp_path / "run",
    )
    metrics = train(cfg)
    assert "train/skipped_steps" not in metrics
    assert all(math.isfinite(v) for v in metrics.values())
    return metrics


@pytest.mark.slow
def test_fp16_first_steps_of_facades_on_cpu(tmp_path: Path, facades_root: Path) -> None:
    """The real data through the CPU fp16 path: 60 steps of a small U-Net on 32x32 crops
    (about 0.3 s a step on 2 CPU cores; the 200-step test of the real recipe needs a GPU)."""
    small = ["trainer=cpu", "discriminator.ndf=8", *TINY_UNET, "model.num_downs=5"]
    crops = ["data.load_size=36", "data.crop_size=32"]
    train_on_facades(tmp_path, facades_root, 60, *fp16_on_cpu(), *small, *crops)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: 16-mixed on CUDA")
def test_16_mixed_first_200_steps_of_facades_on_gpu(tmp_path: Path, facades_root: Path) -> None:
    """The paper's facades recipe (U-Net256, 256x256) for 200 steps in 16-mixed."""
    train_on_facades(tmp_path, facades_root, 200, "trainer=gpu", "trainer.precision=16-mixed")


# One training step of plain SGD with lr 1: each network moves by exactly minus the gradient
# that reached its optimizer.
SGD_ONE_STEP = ["optim.generator._target_=torch.optim.SGD", "~optim.generator.betas",
                "optim.discriminator._target_=torch.optim.SGD", "~optim.discriminator.betas",
                "optim.lr=1.0", "data.batch_size=1", "+trainer.fast_dev_run=1",
                "trainer.num_sanity_val_steps=0"]  # fmt: skip


def first_sgd_steps(tmp_path: Path, *overrides: str) -> dict[str, torch.Tensor]:
    """The change of the generator's and the discriminator's parameters (flattened) in the
    first step of SGD_ONE_STEP; the same initial weights and data on every call."""
    cfg = compose_run(
        [*TINY, *TINY_UNET, f"paths.data_dir={tmp_path.parent}", *SGD_ONE_STEP, *overrides],
        tmp_path / "run",
    )
    torch.manual_seed(0)
    task = instantiate(cfg.task)
    before = {k: v.clone() for k, v in task.state_dict().items() if v.is_floating_point()}
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    trainer.fit(task, datamodule=instantiate(cfg.data))
    after = task.state_dict()
    return {
        prefix: torch.cat([(after[n] - before[n]).flatten() for n in sorted(before)
                           if n.startswith(prefix) and n in dict(task.named_parameters())])
        for prefix in ("generator.", "discriminator.")
    }  # fmt: skip


def test_gradient_clipping_bounds_each_networks_step(tmp_path: Path) -> None:
    steps = first_sgd_steps(tmp_path / "fp32", "task.clip_grad_norm=0.001")
    for name, step in steps.items():
        assert 0 < step.norm() <= 1e-3 * (1 + 1e-4), name


def test_fp16_clipping_is_the_hand_computed_clip_of_the_unscaled_gradient(tmp_path: Path) -> None:
    # Clipping the still-scaled gradients (Lightning #18089) would move each network by
    # max_norm / scale (1e-3 / 1024 here), not by max_norm.
    fp16 = [*fp16_on_cpu(init_scale=2.0**10), *SMALL]
    raw = first_sgd_steps(tmp_path / "raw", *fp16, "task.clip_grad_norm=0")
    clipped = first_sgd_steps(tmp_path / "clipped", *fp16, "task.clip_grad_norm=0.001")
    for name in raw:
        assert raw[name].norm() > 1e-2, name  # the gradients are far larger than the bound
        assert clipped[name].norm() == pytest.approx(1e-3, rel=1e-3), name
    # the discriminator steps first, on the same inputs in both runs: its step is exactly
    # torch's clip of the gradient (coefficient max_norm / (norm + 1e-6))
    d = raw["discriminator."]
    expected = d * (1e-3 / (d.norm() + 1e-6))
    # (to the rounding of the weights, up to ~1 for batch norm's, that move by ~5e-6 each:
    # atol; the steps of a clip before unscaling would be 1024 times smaller)
    torch.testing.assert_close(clipped["discriminator."], expected, rtol=1e-3, atol=2e-7)
