"""Shared test helpers: compose configs like the CLI does and run tiny trainings."""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image
from torch import Tensor

from pix2pix_lit.config import config_dir
from pix2pix_lit.data import PairedImageDataModule
from pix2pix_lit.metrics.labels import Palette
from pix2pix_lit.training.run import train

CONF = config_dir()
# A small network on 64×64 synthetic pairs: a full pass of the machinery in seconds.
TINY = [
    "data=synthetic",
    "discriminator.ndf=8",
    "trainer=cpu",
    "trainer.enable_progress_bar=false",
]
TINY_UNET = ["model.num_downs=6", "model.ngf=8"]
# One training and one validation batch with loggers and checkpoints on (which
# fast_dev_run would switch off).
ONE_BATCH = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
]

# A resume that trains further than the run it continues (which stopped at an earlier
# trainer.max_epochs): a change of setting a resume must allow.
ALLOW_MAX_EPOCHS = "resume.allow=[trainer.max_epochs]"


def compose_run(overrides: list[str], out: Path) -> DictConfig:
    """Compose like the CLI does, with the run dir at ``out``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[*overrides, f"hydra.run.dir={out}"],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra  # the CLI hands the task function the config without it, too
    return cfg


def run_tiny(
    tmp_path: Path, *overrides: str, out: str = "run", model: list[str] = TINY_UNET
) -> dict[str, float]:
    """Train in-process; ``model`` are the generator overrides (a small U-Net by default)."""
    cfg = compose_run(
        [*TINY, *model, f"paths.data_dir={tmp_path / 'data'}", *overrides], tmp_path / out
    )
    return train(cfg)


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def untimed(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Metric rows without the measured times (throughput, elapsed time), which differ from
    one session of a run to the next."""
    return [
        {k: v for k, v in row.items() if "img_per_s" not in k and k != "time/elapsed_s"}
        for row in rows
    ]


def tiny_cli(tmp_path: Path) -> list[str]:
    """Command-line arguments of the tiny setup, with data and logs under ``tmp_path``."""
    return [
        *TINY,
        *TINY_UNET,
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]


def cli(
    *args: str, cwd: Path, module: str = "pix2pix_lit.train", timeout: int = 600
) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


class SignalAtBatch(L.Callback):
    """Test fault injector: sends ``signum`` to this process after global batch ``batch``, and
    with ``group=True`` to its data-loader workers too, as a terminal's Ctrl+C reaches every
    process of the foreground group (without signalling the test runner's own group)."""

    def __init__(self, batch: int, signum: str = "SIGTERM", group: bool = False) -> None:
        self.batch = batch
        self.signum = getattr(signal, signum)
        self.group = group

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        done = trainer.fit_loop.epoch_loop._batches_that_stepped + 1
        if done == self.batch:
            children = [str(c.pid) for c in multiprocessing.active_children()] if self.group else []
            if children:  # from another process: torch's workers take a SIGTERM from their
                # parent as a request to exit cleanly, but not one from elsewhere
                subprocess.run(["kill", f"-{self.signum.name}", *children], check=True)
            os.kill(os.getpid(), self.signum)


class NanInputsFromBatch(L.Callback):
    """Test fault injector: makes the inputs of global batches ``start`` .. ``stop - 1`` NaN
    (on every process, or on process ``rank`` only)."""

    def __init__(self, start: int, stop: int = 10**9, rank: int | None = None) -> None:
        self.start, self.stop, self.rank = start, stop, rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.rank is not None and trainer.global_rank != self.rank:
            return
        if self.start <= trainer.fit_loop.epoch_loop._batches_that_stepped < self.stop:
            batch["A"].fill_(float("nan"))


def tiny_checkpoint(factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the tiny model (64x64 synthetic data), trained once per session."""
    root = factory.getbasetemp() / "tiny_checkpoint"
    ckpt = root / "run" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        run_tiny(root, *ONE_BATCH, "logger=none")
    return ckpt


def run_main(main: Callable[[], None], *overrides: str) -> str | None:
    """Run a Hydra entry point in-process, as its CLI would; return the exit message or None."""
    with mock.patch.object(sys, "argv", ["prog", *overrides]):
        try:
            main()
        except SystemExit as exit_:
            return str(exit_.code)
    return None


TWO_CLASSES = Palette("two", ("sky", "wall"), ((0, 0, 255), (255, 0, 0)))


def paint(classes: Tensor, palette: Palette) -> Tensor:
    """(N, H, W) class indices → (N, 3, H, W) images in [-1, 1] drawn in the palette."""
    colors = torch.tensor(palette.colors, dtype=torch.float32)
    return (colors[classes].permute(0, 3, 1, 2) / 127.5 - 1).contiguous()


def cli_train_run(tmp_path: Path, *overrides: str) -> Path:
    """Train the tiny setup for one batch through the command line, with data and logs under
    ``tmp_path``; assert it exits 0 and made exactly one run, and return that run's folder."""
    out = cli(
        *TINY,
        *overrides,
        *ONE_BATCH,
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.log_dir={tmp_path / 'logs'}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = (tmp_path / "logs").glob("*/runs/*")
    return run


def save_ab(path: Path, ab: np.ndarray) -> Path:
    """Save an A|B array (H, 2W, 3) as an image, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ab).save(path)
    return path


def gradient_pair(size: int) -> np.ndarray:
    """An A|B image whose A encodes (x, y) in its red/green channels and B = 255 - A."""
    y, x = np.mgrid[0:size, 0:size]
    a = np.stack([x * 255 // (size - 1), y * 255 // (size - 1), np.full_like(x, 128)], axis=-1)
    a = a.astype(np.uint8)
    return np.concatenate([a, 255 - a], axis=1)


def small_paired_module(root: Path, **overrides: object) -> PairedImageDataModule:
    """A paired datamodule on ``root`` with small crops, batches of 2 and no workers."""
    settings: dict[str, object] = {
        "load_size": 36,
        "crop_size": 32,
        "batch_size": 2,
        "num_workers": 0,
    }
    settings.update(overrides)
    return PairedImageDataModule(root, **settings)
