"""The training entry point end to end: configs, runs, resume, sweeps, CLI and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from helpers import (
    ALLOW_MAX_EPOCHS,
    CONF,
    ONE_BATCH,
    TINY,
    TINY_UNET,
    cli,
    compose_run,
    read_metrics,
    run_tiny,
    tiny_cli,
)
from pix2pix_lit.checkpoint_file import epochs_trained
from pix2pix_lit.errors import DataError
from pix2pix_lit.inference.checkpoint import load_task
from pix2pix_lit.training.resume import resolve_ckpt_path

# -- configs -----------------------------------------------------------------------------


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


GROUPS = ["data", "model", "discriminator", "loss", "optim", "scheduler", "task", "trainer",
          "logger", "callbacks", "paths", "hydra", "experiment", "perf", "hparams_search"]  # fmt: skip


@pytest.mark.parametrize(
    "override", [f"{g}={o}" for g in GROUPS for o in group_options(g)], ids=str
)
def test_every_config_option_composes(override: str, tmp_path: Path) -> None:
    cfg = compose_run([override], tmp_path)
    group, option = override.split("=")
    assert HydraConfig.get().runtime.choices[group] == option
    OmegaConf.resolve(cfg)  # every interpolation resolves


@pytest.mark.parametrize("perf", group_options("perf"))
def test_every_perf_preset_builds_its_objects(perf: str, tmp_path: Path) -> None:
    # perf=gpu cannot train here (no GPU), but its data module, callbacks and optimizers build
    cfg = compose_run([f"perf={perf}", "data.download=false"], tmp_path)
    assert isinstance(instantiate(cfg.data), L.LightningDataModule)
    for callback in cfg.callbacks.values():
        if callback and "_target_" in callback:
            instantiate(callback)
    optimizer = instantiate(cfg.optim.generator)([torch.nn.Parameter(torch.zeros(2))])
    assert optimizer.defaults["fused"] == (perf != "none" or None)


def test_each_config_group_has_options() -> None:
    for group in GROUPS:
        assert group_options(group), f"conf/{group}/ has no options"


def test_defaults_reproduce_the_papers_facades_recipe(tmp_path: Path) -> None:
    for overrides in ([], ["experiment=facades_pix2pix"]):
        cfg = compose_run(overrides, tmp_path)
        assert cfg.data.direction == "BtoA"
        assert (cfg.data.load_size, cfg.data.crop_size, cfg.data.flip) == (286, 256, True)
        assert cfg.data.batch_size == 1
        assert cfg.model._target_.endswith("UnetGenerator") and cfg.model.num_downs == 8
        assert cfg.discriminator._target_.endswith("PatchDiscriminator")
        assert cfg.discriminator.n_layers == 3 and cfg.discriminator.in_channels == 6
        assert (cfg.loss.gan_mode, cfg.loss.lambda_l1, cfg.loss.conditional) == (
            "vanilla",
            100,
            True,
        )
        assert cfg.optim.generator.lr == cfg.optim.discriminator.lr == 2e-4
        assert list(cfg.optim.generator.betas) == [0.5, 0.999]
        assert (cfg.scheduler.n_epochs, cfg.scheduler.n_epochs_decay) == (100, 100)
        assert cfg.trainer.max_epochs == 200
        assert cfg.task.inference == "paper"


def test_max_epochs_follows_the_schedule(tmp_path: Path) -> None:
    cfg = compose_run(["scheduler.n_epochs=3", "scheduler.n_epochs_decay=4"], tmp_path)
    assert cfg.trainer.max_epochs == 7


def test_task_instantiates_with_two_adam_optimizers_and_schedulers(tmp_path: Path) -> None:
    cfg = compose_run([*TINY, *TINY_UNET, "optim.discriminator.lr=4e-4"], tmp_path)
    task = instantiate(cfg.task)
    (opt_g, opt_d), (sched_g, sched_d) = task.configure_optimizers()
    assert isinstance(opt_g, torch.optim.Adam) and isinstance(opt_d, torch.optim.Adam)
    assert opt_g.param_groups[0]["lr"] == 2e-4 and opt_d.param_groups[0]["lr"] == 4e-4
    assert opt_g.param_groups[0]["betas"] == (0.5, 0.999)
    g_ids = {id(p) for p in task.generator.parameters()}
    assert {id(p) for g in opt_g.param_groups for p in g["params"]} == g_ids
    assert not g_ids & {id(p) for g in opt_d.param_groups for p in g["params"]}
    assert sched_g.optimizer is opt_g and sched_d.optimizer is opt_d


# -- training runs -----------------------------------------------------------------------


@pytest.mark.parametrize("logger", ["csv", "tensorboard", "wandb", "none"])
def test_one_batch_run_with_each_logger(logger: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    metrics = run_tiny(tmp_path, f"logger={logger}", *ONE_BATCH)
    assert all(
        math.isfinite(metrics[k])
        for k in ("train/G_L1_epoch", "train/G_GAN_epoch", "train/D_real_epoch")
    )
    run = tmp_path / "run"
    expected = {"csv": "csv/metrics.csv", "tensorboard": "tensorboard", "wandb": "wandb"}
    if logger in expected:
        assert (run / expected[logger]).exists()
    if logger == "wandb":
        (offline,) = (run / "wandb").glob("offline-run-*")  # offline without an API key
        assert list(offline.glob("files/media/images/**/*.png")), "the sample grid reaches W&B"


@pytest.mark.parametrize("every", [1, 2])
def test_losses_are_logged_every_n_steps_and_averaged_over_the_epoch(
    every: int, tmp_path: Path
) -> None:
    # 8 training pairs in batches of 2: 4 steps
    run_tiny(tmp_path, "trainer.max_epochs=1", f"trainer.log_every_n_steps={every}")
    rows = read_metrics(tmp_path / "run")
    steps = [float(r["train/G_L1_step"]) for r in rows if r.get("train/G_L1_step")]
    (epoch,) = [float(r["train/G_L1_epoch"]) for r in rows if r.get("train/G_L1_epoch")]
    assert len(steps) == 4 // every
    if every == 1:
        assert epoch == pytest.approx(sum(steps) / 4, rel=1e-6)


def test_two_epochs_log_finite_losses_checkpoints_and_grids(tmp_path: Path) -> None:
    metrics = run_tiny(
        tmp_path,
        "scheduler.n_epochs=1",
        "scheduler.n_epochs_decay=1",
        "trainer.log_every_n_steps=1",
    )
    run = tmp_path / "run"
    rows = read_metrics(run)
    for key in ("train/G_GAN_step", "train/G_L1_step", "train/D_real_step", "train/D_fake_step"):
        values = [float(r[key]) for r in rows if r.get(key)]
        assert values and all(math.isfinite(v) for v in values), key
    val = [r for r in rows if r.get("val/L1")]
    assert len(val) == 2 and all(0 < float(r["val/PSNR"]) < 100 for r in val)
    assert all(-1 <= float(r["val/SSIM"]) <= 1 for r in val)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "checkpoints").glob("best_epoch*.ckpt"))) == 1
    assert sorted(p.name for p in (run / "images").glob("*.png")) == [
        "epoch_000.png",
        "epoch_001.png",
    ]
    assert metrics["val/L1"] == pytest.approx(float(val[-1]["val/L1"]))
    # the linear decay was stepped per epoch: lr after epoch 1 is 1 - 1/2 of the base
    lrs = [float(r["train/lr_G"]) for r in rows if r.get("train/lr_G")]
    assert lrs == pytest.approx([2e-4, 1e-4])
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["pix2pix_lit_config"]["model"]["ngf"] == 8
    assert ckpt["epoch"] == 1 and len(ckpt["optimizer_states"]) == 2
    assert len(ckpt["lr_schedulers"]) == 2


def test_resumed_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    common = ("scheduler.n_epochs=1", "scheduler.n_epochs_decay=2", "seed=7")
    run_tiny(tmp_path, *common, out="full")
    run_tiny(tmp_path, *common, "trainer.max_epochs=2", out="part")
    part_ckpt = tmp_path / "part" / "checkpoints" / "last.ckpt"
    run_tiny(tmp_path, *common, f"ckpt_path={part_ckpt}", ALLOW_MAX_EPOCHS, out="resumed")
    full = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=False)
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["epoch"] == full["epoch"] == 2
    assert resumed["global_step"] == full["global_step"]
    for key, value in full["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    assert resumed["lr_schedulers"][0]["last_epoch"] == full["lr_schedulers"][0]["last_epoch"]


def test_bf16_mixed_precision_on_cpu(tmp_path: Path) -> None:
    metrics = run_tiny(tmp_path, "trainer.precision=bf16-mixed", "+trainer.fast_dev_run=2")
    assert all(math.isfinite(v) for v in metrics.values())


def test_validation_metrics_are_computed_in_fp32_under_bf16(tmp_path: Path) -> None:
    # one training step apart from the precision: SSIM computed in bf16 was off by ~0.3
    common = (*ONE_BATCH, "task.inference=standard")
    fp32 = run_tiny(tmp_path, *common, out="fp32")
    bf16 = run_tiny(tmp_path, *common, "trainer.precision=bf16-mixed", out="bf16")
    assert bf16["val/SSIM"] == pytest.approx(fp32["val/SSIM"], abs=0.05)


def test_standard_inference_and_l1_only_row(tmp_path: Path) -> None:
    metrics = run_tiny(
        tmp_path, "task.inference=standard", "loss.lambda_gan=0", "+trainer.fast_dev_run=true"
    )
    assert "train/G_L1_epoch" in metrics
    assert "train/G_GAN_epoch" not in metrics and "train/D_real_epoch" not in metrics
    assert metrics["val/inference_paper"] == 0.0


# -- command line ------------------------------------------------------------------------


def test_cli_help_and_cfg_job_show_the_composed_config(tmp_path: Path) -> None:
    out = cli("--help", cwd=tmp_path)
    assert out.returncode == 0
    for group in ("model: ", "discriminator: ", "loss: ", "trainer: ", "experiment: "):
        assert group in out.stdout
    assert "unet256" in out.stdout and "facades_pix2pix" in out.stdout
    out = cli("--cfg", "job", "loss.lambda_l1=10", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (
        "lambda_l1: 10" in out.stdout
        and "_target_: pix2pix_lit.networks.UnetGenerator" in out.stdout
    )


@pytest.mark.slow
def test_cli_multirun_sweep(tmp_path: Path) -> None:
    out = cli(
        "-m",
        "loss.lambda_l1=0,100",
        *tiny_cli(tmp_path),
        "+trainer.fast_dev_run=true",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    sweeps = list((tmp_path / "logs" / "pix2pix" / "multiruns").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    for job, value in zip(jobs, ("0", "100"), strict=True):
        overrides = (sweeps[0] / job / ".hydra" / "overrides.yaml").read_text()
        assert f"loss.lambda_l1={value}" in overrides


@pytest.mark.slow
def test_cli_user_forms_on_facades(tmp_path: Path, facades_root: Path) -> None:
    """The README's two forms, on the real facades, cut to a couple of batches."""
    short = ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
             "trainer.enable_progress_bar=false", "data.num_workers=0",
             f"paths.data_dir={facades_root.parent}", f"paths.log_dir={tmp_path / 'logs'}"]  # fmt: skip
    out = cli(
        "model=unet256",
        "loss.lambda_l1=100",
        "trainer=cpu",
        "trainer.max_epochs=1",
        *short,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    out = cli(
        "experiment=facades_pix2pix", "trainer=cpu", "trainer.max_epochs=1", *short, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = list((tmp_path / "logs" / "facades_pix2pix" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "checkpoints" / "last.ckpt").is_file()
    assert (runs[0] / ".hydra" / "config.yaml").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model=unet512", "Could not find 'model/unet512'"),
        ("data.direction=AtoC", "data.direction"),
        ("loss.gan_mode=wgan", "loss.gan_mode='wgan'"),
    ],
)
def test_cli_bad_input_is_one_clear_line(tmp_path: Path, override: str, message: str) -> None:
    out = cli(*tiny_cli(tmp_path), override, cwd=tmp_path)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_missing_data_root_names_the_key(tmp_path: Path) -> None:
    out = cli(
        f"paths.log_dir={tmp_path}", "data=folder", f"data.root={tmp_path / 'nope'}", cwd=tmp_path
    )
    assert out.returncode != 0
    assert "data.root" in out.stderr and str(tmp_path / "nope") in out.stderr
    assert "Traceback" not in out.stderr


def test_periodic_checkpoints_are_kept_beside_the_best_and_the_last(tmp_path: Path) -> None:
    settings = ("scheduler.n_epochs=0", "scheduler.n_epochs_decay=4",
                "callbacks.model_checkpoint.monitor=train/lr_G",
                "callbacks.model_checkpoint.mode=max",
                "callbacks.periodic_checkpoint.every_n_epochs=2")  # fmt: skip
    run_tiny(tmp_path, *settings)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "best_epoch000.ckpt",
        "epoch001.ckpt",
        "epoch003.ckpt",
        "last.ckpt",
    ]
    assert torch.load(checkpoints / "epoch001.ckpt", weights_only=False)["epoch"] == 1
    # weights only: the last one holds last.ckpt's weights, without the optimizers' state
    kept = torch.load(checkpoints / "epoch003.ckpt", weights_only=False)
    last = torch.load(checkpoints / "last.ckpt", weights_only=False)
    assert "optimizer_states" not in kept and "optimizer_states" in last
    assert kept["state_dict"].keys() == last["state_dict"].keys()
    assert all(torch.equal(kept["state_dict"][k], v) for k, v in last["state_dict"].items())
    assert epochs_trained(kept) == 4
    assert load_task(checkpoints / "epoch003.ckpt").checkpoint_epochs_trained == 4
    # which cannot resume: refused in one line when named, passed over by ckpt_path=auto
    with pytest.raises(DataError, match=r"epoch001.ckpt holds the weights only.*last.ckpt"):
        run_tiny(tmp_path, *settings, f"ckpt_path={checkpoints / 'epoch001.ckpt'}", out="again")
    (checkpoints / "last.ckpt").unlink()  # as if a crash had spoiled it
    assert resolve_ckpt_path("auto", tmp_path / "run") == str(checkpoints / "best_epoch000.ckpt")


def test_last_checkpoint_follows_every_epoch_even_without_improvement(tmp_path: Path) -> None:
    # monitor the learning rate, which only falls: the best checkpoint stays at epoch 0
    run_tiny(tmp_path, "scheduler.n_epochs=0", "scheduler.n_epochs_decay=3",
             "callbacks.model_checkpoint.monitor=train/lr_G", "callbacks.model_checkpoint.mode=max")  # fmt: skip
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [p.name for p in checkpoints.glob("best_*")] == ["best_epoch000.ckpt"]
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["epoch"] == 2
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best_epoch000.ckpt", "last.ckpt"]
