"""Loggers under faults: W&B without credentials or without a server logs offline; a resumed
run's CSV keeps the metrics of its earlier sessions."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
from lightning.fabric.plugins.environments.lightning import find_free_network_port

from helpers import ALLOW_MAX_EPOCHS, ONE_BATCH, read_metrics, run_tiny, untimed
from pix2pix_lit.loggers import wandb_logger


def test_an_unreachable_wandb_server_falls_back_to_offline_logging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # credentials are configured, so the logger tries an online run, but nothing listens
    wandb = pytest.importorskip("wandb")
    wandb.teardown()  # forget the settings an earlier (offline) run in this process left
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{find_free_network_port()}")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "5")
    try:
        with pytest.warns(
            UserWarning, match="W&B could not start an online run .* logging offline"
        ):
            metrics = run_tiny(tmp_path, "logger=wandb", *ONE_BATCH)
    finally:
        wandb.finish()
        wandb.teardown()  # leave no settings of this server behind for later tests
    assert math.isfinite(metrics["val/L1"])
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    assert list(offline.glob("files/media/images/**/*.png")), "the sample grid still reaches W&B"
    # under an id of its own: synced under the online run's id, it would replace that run
    assert not offline.name.endswith((tmp_path / "run" / "wandb" / "run_id").read_text())


def test_a_resumed_run_keeps_the_metrics_of_its_earlier_sessions(tmp_path: Path) -> None:
    common = ("logger=csv", "trainer.log_every_n_steps=1", "scheduler.n_epochs=1")
    run = tmp_path / "run"
    run_tiny(tmp_path, *common, "trainer.max_epochs=1")
    first = read_metrics(run)
    shutil.copy(run / "checkpoints" / "last.ckpt", tmp_path / "epoch0.ckpt")
    run_tiny(tmp_path, *common, "trainer.max_epochs=2", "ckpt_path=last", ALLOW_MAX_EPOCHS)
    both = read_metrics(run)
    assert both[: len(first)] == first, "the first session's rows are kept"
    assert [r["epoch"] for r in both[len(first) :]] == ["1"] * len(first)
    # resuming from an older checkpoint replaces the rows logged after it, once
    resume_epoch0 = (f"ckpt_path={tmp_path / 'epoch0.ckpt'}", ALLOW_MAX_EPOCHS)
    run_tiny(tmp_path, *common, "trainer.max_epochs=2", *resume_epoch0)
    assert untimed(read_metrics(run)) == untimed(both)


@pytest.mark.parametrize("credentials", ["none", "env", "netrc"])
def test_wandb_logs_offline_exactly_when_no_api_key_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, credentials: str
) -> None:
    # no WANDB_MODE: the logger decides from the credentials alone
    monkeypatch.setenv("WANDB_MODE", "unset")  # restored after the test
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.netrc
    if credentials == "env":
        monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    if credentials == "netrc":
        (tmp_path / ".netrc").write_text(
            f"machine api.wandb.ai\n  login user\n  password {'0' * 40}\n"
        )
        (tmp_path / ".netrc").chmod(0o600)
    logger = wandb_logger(tmp_path / "run")
    online = credentials != "none"
    assert logger._offline is not online
    assert os.environ.get("WANDB_MODE") == (None if online else "offline")
    # online runs continue their W&B run on resume; offline ones get ids of their own
    assert (logger._wandb_init["id"] is not None) is online
