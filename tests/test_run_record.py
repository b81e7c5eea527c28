"""A run's record is never wrong: one owner per run folder, nothing of an old run rewritten by a
refused start, resumes that say what changed, and one line where a traceback used to be."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict, read_write

from helpers import (
    ALLOW_MAX_EPOCHS,
    ONE_BATCH,
    TINY,
    TINY_UNET,
    cli,
    compose_run,
    read_metrics,
    run_tiny,
    tiny_cli,
)
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.launching.sweep_job import monitored_metric
from pix2pix_lit.training.resume import resolve_ckpt_path
from pix2pix_lit.training.run import train
from pix2pix_lit.training.run_folder import LOCK_FILE

# 8 synthetic pairs in batches of 2: 4 batches an epoch; epoch 0 at the constant rate, epoch
# 1 at half of it (linear decay over one epoch)
TWO_EPOCHS = ("scheduler.n_epochs=1", "scheduler.n_epochs_decay=1", "seed=5", "logger=csv")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` but its lock file (which each start takes), with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first epoch of TWO_EPOCHS (a run stopped at trainer.max_epochs=1)."""
    tmp = tmp_path_factory.mktemp("one_epoch")
    run_tiny(tmp, *TWO_EPOCHS, "trainer.max_epochs=1", out="run")
    return tmp / "run"


def resume_copy(one_epoch: Path, tmp_path: Path) -> Path:
    """A copy of the one-epoch run folder to resume in place."""
    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    return run


# -- 1. a refused start writes nothing ----------------------------------------------------------


def test_a_refused_fresh_start_leaves_the_old_runs_files_byte_identical(tmp_path: Path) -> None:
    common = [*TINY, *TINY_UNET, *ONE_BATCH, f"paths.data_dir={tmp_path / 'data'}"]
    run = tmp_path / "old_run"
    first = cli(*common, f"hydra.run.dir={run}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (run / ".hydra" / "config.yaml").is_file() and (run / ".hydra" / "hydra.yaml").is_file()
    before = snapshot(run)
    # a fresh start with another seed pointed at that folder
    again = cli(*common, "seed=5", f"hydra.run.dir={run}", cwd=tmp_path)
    assert again.returncode == 1
    assert "error: " in again.stderr and "already holds best_epoch000.ckpt" in again.stderr
    assert "Traceback" not in again.stderr
    assert snapshot(run) == before, "the old run's record, logs and checkpoints are untouched"


# -- 2. one owner per run folder ----------------------------------------------------------------


def test_a_run_folder_has_one_owner_and_a_killed_owner_does_not_keep_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = textwrap.dedent(
        f"""
        import time
        from pix2pix_lit.training.run_folder import own_run_folder
        with own_run_folder({str(run)!r}):
            print("held", flush=True)
            time.sleep(600)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "held"
        with pytest.raises(
            ConfigError, match=rf"run folder .* is in use by process {owner.pid} on"
        ):
            run_tiny(tmp_path, *ONE_BATCH)
        assert not (run / "checkpoints").exists() and not (run / ".hydra").exists()
    finally:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
    # the system released the killed owner's lock: the folder is free
    run_tiny(tmp_path, *ONE_BATCH)
    assert (run / "checkpoints" / "last.ckpt").is_file()


# -- 3. resume: changes refused by default, applied for real when allowed ------------------------


def test_a_resume_refuses_changed_settings_naming_each_key(one_epoch: Path, tmp_path: Path) -> None:
    run = resume_copy(one_epoch, tmp_path)
    before = snapshot(run)
    with pytest.raises(ConfigError) as refused:
        run_tiny(tmp_path, *TWO_EPOCHS, "ckpt_path=last", "optim.lr=1e-3", "loss.lambda_l1=10")
    message = str(refused.value)
    assert "\n" not in message
    # the keys the command changed, each with both values; not the keys that copy them
    # (optim.generator.lr, task.objective.lambda_l1) nor trainer.max_epochs (1 -> 2 here)
    assert "optim.lr=0.0002 (now 0.001)" in message and "loss.lambda_l1=100.0 (now 10)" in message
    assert "optim.generator.lr" not in message and "task.objective" not in message
    assert "resume.allow=[loss.lambda_l1,optim.lr,trainer.max_epochs]" in message
    assert snapshot(run) == before


def test_a_resume_with_another_generator_names_the_checkpoints_config(
    one_epoch: Path, tmp_path: Path
) -> None:
    ckpt = one_epoch / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError) as refused:
        run_tiny(tmp_path, *TWO_EPOCHS, f"ckpt_path={ckpt}", model=["model=resnet6", "model.ngf=8"])
    message = str(refused.value)
    assert "\n" not in message and len(message) < 1500
    assert "model._target_=pix2pix_lit.networks.UnetGenerator (now " in message


def test_allowed_changes_take_effect_and_later_checkpoints_store_them(
    one_epoch: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = resume_copy(one_epoch, tmp_path)
    allow = "resume.allow=[trainer.max_epochs,optim.lr,loss.lambda_l1,data.num_images]"
    changes = ["optim.lr=1e-3", "loss.lambda_l1=10", allow, "trainer.log_every_n_steps=1"]
    # ... on a dataset of 10 training images instead of 8
    other_data = ["data.num_images.train=10", f"paths.data_dir={tmp_path / 'data10'}"]
    with caplog.at_level(logging.WARNING):
        run_tiny(tmp_path, *TWO_EPOCHS, "ckpt_path=last", *changes, *other_data)
    assert "Resuming on a training split of 10 samples, but" in caplog.text
    assert "was trained on 8" in caplog.text
    # epoch 1 trained at the new rate, halved by the schedule: not the restored 2e-4 / 2
    rows = read_metrics(run)
    assert [float(r["train/lr_G"]) for r in rows if r.get("train/lr_G")] == pytest.approx(
        [2e-4, 5e-4]
    )
    assert [float(r["train/lr_D"]) for r in rows if r.get("train/lr_D")][-1] == pytest.approx(5e-4)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert [s["base_lrs"] for s in ckpt["lr_schedulers"]] == [[1e-3], [1e-3]]
    config = ckpt["pix2pix_lit_config"]
    assert config["loss"]["lambda_l1"] == 10 and config["task"]["objective"]["lambda_l1"] == 10
    assert config["optim"]["generator"]["lr"] == 1e-3
    assert "lambda_l1: 10" in (run / ".hydra" / "config.yaml").read_text()


# The tasks with one optimizer, which Lightning steps (the FCN-score's segmenter, the DTN's digit
# classifiers), tiny, with the key of their learning rate
ONE_OPTIMIZER_TASKS = {
    "segmenter": (["task=segmenter", "data=synthetic", "model.width=4"], "task.optimizer.lr"),
    "digit_classifier": (
        ["task=digit_classifier", "model.widths=[8,8,8]", "model.features=16",
         "data.image_size=16", "data.num_images.train=20", "data.num_images.test=10",
         "data.batch_size=10"],
        "optim.lr",
    ),
}  # fmt: skip


@pytest.mark.parametrize("task", list(ONE_OPTIMIZER_TASKS))
def test_an_allowed_learning_rate_change_takes_effect_in_the_one_optimizer_tasks(
    task: str, tmp_path: Path
) -> None:
    overrides, lr_key = ONE_OPTIMIZER_TASKS[task]
    common = [
        *overrides, *TWO_EPOCHS, "trainer=cpu", "trainer.enable_progress_bar=false",
        "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0", f"paths.data_dir={tmp_path / 'data'}",
        # the rate each epoch trains at, logged when the epoch starts
        "+callbacks.lr._target_=lightning.pytorch.callbacks.LearningRateMonitor",
        "+callbacks.lr.logging_interval=epoch",
    ]  # fmt: skip
    run = tmp_path / "run"
    train(compose_run([*common, f"{lr_key}=1e-3", "trainer.max_epochs=1"], run))
    allow = f"resume.allow=[trainer.max_epochs,{lr_key}]"
    train(compose_run([*common, f"{lr_key}=4e-3", "ckpt_path=last", allow], run))
    # epoch 1 trained at the new rate, halved by the schedule: not the restored 1e-3 / 2
    rates = [float(r["lr-Adam"]) for r in read_metrics(run) if r.get("lr-Adam")]
    assert rates == pytest.approx([1e-3, 2e-3])
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert [s["base_lrs"] for s in ckpt["lr_schedulers"]] == [[4e-3]]
    assert OmegaConf.select(OmegaConf.create(ckpt["pix2pix_lit_config"]), lr_key) == 4e-3


# -- 4. ckpt_path=auto after a crash that spoiled last.ckpt ---------------------------------------


def test_ckpt_path_auto_falls_back_to_the_newest_intact_checkpoint(
    one_epoch: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert resolve_ckpt_path("auto", tmp_path / "run") is None  # nothing yet: a fresh start
    run = resume_copy(one_epoch, tmp_path)
    last, best = run / "checkpoints" / "last.ckpt", run / "checkpoints" / "best_epoch000.ckpt"
    last.write_bytes(last.read_bytes()[:5000])  # cut short, as by a crash mid-copy
    with caplog.at_level(logging.WARNING):
        assert resolve_ckpt_path("auto", run) == str(best)
    assert f"{last} cannot resume" in caplog.text and f"resuming from {best}" in caplog.text
    # and a requeued job resumes from it and finishes the run
    run_tiny(tmp_path, *TWO_EPOCHS, "ckpt_path=auto", ALLOW_MAX_EPOCHS)
    assert torch.load(last, weights_only=False)["epoch"] == 1


def test_a_truncated_checkpoint_is_one_line(one_epoch: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes((one_epoch / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    with pytest.raises(DataError, match=r"ckpt_path=.*cut.ckpt is not a pix2pix_lit checkpoint"):
        run_tiny(tmp_path, *TWO_EPOCHS, f"ckpt_path={cut}")


# -- one line where a traceback was ------------------------------------------------------------


def test_a_log_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("not a folder")
    out = cli(*TINY, f"paths.log_dir={tmp_path / 'logs'}", cwd=tmp_path)
    assert out.returncode == 1
    assert f"{tmp_path / 'logs'} is a file, not a folder" in out.stderr
    assert "Traceback" not in out.stderr


def test_input_sizes_are_checked_against_every_network_before_training(tmp_path: Path) -> None:
    # the smoke test a config comment offered: U-GAT-IT's 7-layer global discriminator
    # cannot take 64x64 images
    overrides = ["task=ugatit", "model=ugatit_light", "data=synthetic_unpaired", "trainer=cpu"]
    cfg = compose_run([*overrides, f"paths.data_dir={tmp_path / 'data'}"], tmp_path / "run")
    with pytest.raises(ConfigError) as caught:
        train(cfg)
    assert str(caught.value).startswith(
        "data.crop_size=64 is too small for the discriminator_a (GlobalLocalDiscriminator): "
    )
    assert str(caught.value).endswith("the smallest power of two it takes is 128")
    assert not (tmp_path / "data").exists(), "stopped before the data was even made"


# -- a run that never validated ----------------------------------------------------------------


def test_a_run_that_never_validated_exits_0_with_a_warning(tmp_path: Path) -> None:
    out = cli(*tiny_cli(tmp_path), "++trainer.max_steps=2", "trainer.num_sanity_val_steps=0",
              cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "optimized_metric='val/L1' was not logged" in out.stdout + out.stderr


def test_a_hyperparameter_search_fails_a_trial_without_its_metric(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    from hydra.types import RunMode

    compose_run(["hparams_search=optuna"], tmp_path)
    assert monitored_metric({"train/G_L1_epoch": 1.0}, "val/L1") is None  # not in a sweep
    hydra_cfg = HydraConfig.instance().cfg
    with read_write(hydra_cfg.hydra), open_dict(hydra_cfg.hydra):
        hydra_cfg.hydra.mode = RunMode.MULTIRUN
    with pytest.raises(ConfigError, match="optimized_metric='val/L1' was not logged"):
        monitored_metric({"train/G_L1_epoch": 1.0}, "val/L1")
    assert monitored_metric({"val/L1": 0.5}, "val/L1") == 0.5
