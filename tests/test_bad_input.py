"""Bad input: a bad config value fails before training in one line naming the key; data-loader
worker failures come out as one line with their cause."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from helpers import compose_run, run_tiny
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.training.run import explain_loader_failures, train, worker_death_cause


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr=-0.1", "optim.lr=-0.1 must be a number > 0 (the paper uses 2e-4)"),
        ("optim.lr=abc", "optim.lr='abc' must be a number > 0"),
        ("optim.beta1=1.5", "optim.generator.betas=[1.5, 0.999] must each be a number in [0, 1)"),
        ("data.batch_size=2.5", "data.batch_size=2.5 must be an integer >= 1"),
        ("data.crop_size=0", "data.crop_size=0 must be an integer >= 1"),
        ("data.crop_size=80", "data.load_size=72 is smaller than data.crop_size=80"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be an integer >= 1 (or -1 for no"),
        ("task.inference=eval", "inference='eval' is not one of paper, standard"),
    ],
)
def test_bad_config_fails_before_training_naming_the_key(
    tmp_path: Path, override: str, message: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_tiny(tmp_path, override)
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert time.perf_counter() - started < 30


def test_unknown_generator_is_rejected_at_composition(tmp_path: Path) -> None:
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="model/unet1024"):
        compose_run(["model=unet1024"], tmp_path)


class _Dies(Dataset):
    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        os.kill(os.getpid(), self.signum)
        return torch.zeros(1)


class _Unreadable(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        raise DataError(f"cannot read image /data/{index}.jpg: broken data stream")


def test_a_dead_loader_worker_is_reported_with_its_cause() -> None:
    with (
        pytest.raises(
            DataError, match=r"a data-loader worker died: DataLoader worker .*num_workers"
        ),
        explain_loader_failures(),
    ):
        next(iter(DataLoader(_Dies(signal.SIGKILL), num_workers=1)))


def test_a_worker_stopped_from_outside_is_not_called_out_of_memory() -> None:
    # torch's messages when its SIGCHLD handler saw the worker end
    killed = "DataLoader worker (pid 17680) is killed by signal: Killed. "
    terminated = "DataLoader worker (pid 17680) is killed by signal: Terminated. "
    assert "running out of memory" in worker_death_cause(killed)
    assert worker_death_cause(terminated).endswith("resume it with ckpt_path=auto")


def test_an_error_inside_a_worker_comes_out_as_one_line() -> None:
    with pytest.raises(DataError) as caught, explain_loader_failures():
        next(iter(DataLoader(_Unreadable(), num_workers=1)))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("cannot read image /data/0.jpg") and "worker" in message


def test_train_keeps_user_errors_as_themselves(tmp_path: Path) -> None:
    cfg = compose_run(["data=folder", f"data.root={tmp_path / 'missing'}"], tmp_path / "run")
    with pytest.raises(DataError, match="data.root=.*missing does not exist"):
        train(cfg)
