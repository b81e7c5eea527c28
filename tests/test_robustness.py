"""Faults and bad input: interrupted runs resume exactly, divergence stops cleanly, errors name keys."""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import signal
import time
from pathlib import Path

import fsspec.implementations.local
import pytest
import torch
from lightning.fabric.plugins.environments.lightning import find_free_network_port
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, Dataset

from helpers import ALLOW_MAX_EPOCHS, ONE_BATCH, compose_run, read_metrics, run_tiny
from pix2pix_lit.data import SyntheticPairedDataModule
from pix2pix_lit.errors import ConfigError, DataError, TrainingDivergedError
from pix2pix_lit.run import explain_loader_failures, train

# 8 synthetic pairs in batches of 2: 4 batches an epoch; 3 epochs.
THREE_EPOCHS = ("scheduler.n_epochs=1", "scheduler.n_epochs_decay=2", "seed=3")


def weights(run_dir: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / name, weights_only=False)["state_dict"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("full")
    run_tiny(tmp, *THREE_EPOCHS, out="run")
    return tmp / "run"


@pytest.mark.parametrize(("signum", "num_workers"), [("SIGTERM", 0), ("SIGTERM", 2), ("SIGINT", 0)])
def test_signal_mid_epoch_saves_a_checkpoint_that_resumes_bit_exactly(
    uninterrupted: Path, tmp_path: Path, signum: str, num_workers: int
) -> None:
    workers = [f"data.num_workers={num_workers}", f"data.persistent_workers={num_workers > 0}"]
    injector = ["+callbacks.fault._target_=helpers.SignalAtBatch", "+callbacks.fault.batch=6",
                f"+callbacks.fault.signum={signum}"]  # fmt: skip
    with pytest.raises(SIGTERMException):
        run_tiny(tmp_path, *THREE_EPOCHS, *workers, *injector, out="run")
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["epoch"] == 1  # stopped inside the second epoch, after its 2nd batch
    assert saved["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["completed"] == 2
    # resume in place: same run dir, ckpt_path=last
    run_tiny(tmp_path, *THREE_EPOCHS, *workers, "ckpt_path=last", out="run")
    assert_same_weights(weights(uninterrupted), weights(tmp_path / "run"))


def test_ckpt_path_auto_starts_fresh_then_resumes(tmp_path: Path) -> None:
    from pix2pix_lit.run import resolve_ckpt_path

    assert resolve_ckpt_path("auto", tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert resolve_ckpt_path("auto", tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")
    assert resolve_ckpt_path("last", tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")


def test_seeded_runs_are_identical_and_seeds_matter(uninterrupted: Path, tmp_path: Path) -> None:
    run_tiny(tmp_path, *THREE_EPOCHS, out="again")
    assert_same_weights(weights(uninterrupted), weights(tmp_path / "again"))
    run_tiny(tmp_path, *THREE_EPOCHS, "seed=4", out="other")
    other = weights(tmp_path / "other")
    assert any(not torch.equal(v, other[k]) for k, v in weights(uninterrupted).items())


def test_ckpt_path_last_without_a_checkpoint_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ckpt_path=last: no checkpoint at .*hydra.run.dir"):
        run_tiny(tmp_path, "ckpt_path=last")
    with pytest.raises(ConfigError, match="ckpt_path=/nope.ckpt does not exist.*'auto'"):
        run_tiny(tmp_path, "ckpt_path=/nope.ckpt")


def test_a_fresh_start_does_not_overwrite_an_earlier_runs_checkpoints(tmp_path: Path) -> None:
    run_tiny(tmp_path, "trainer.max_epochs=1")
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    with pytest.raises(
        ConfigError, match=r"already holds best_epoch000.ckpt, last.ckpt .*ckpt_path=last"
    ):
        run_tiny(tmp_path, "trainer.max_epochs=1")
    assert last.read_bytes() == before


def test_a_nonfinite_batch_is_skipped_counted_and_leaves_no_trace(tmp_path: Path) -> None:
    injector = ["+callbacks.fault._target_=helpers.NanInputsFromBatch",
                "+callbacks.fault.start=2", "+callbacks.fault.stop=3"]  # fmt: skip
    metrics = run_tiny(tmp_path, *injector, "trainer.max_epochs=1", "trainer.log_every_n_steps=1")
    assert metrics["train/skipped_steps"] == 2.0  # the D step and the G step of batch 2
    # the skipped batch's losses are left out of the epoch means
    assert math.isfinite(metrics["train/G_L1_epoch"]) and math.isfinite(
        metrics["train/D_fake_epoch"]
    )
    state = weights(tmp_path / "run")
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    rows = read_metrics(tmp_path / "run")
    assert math.isfinite(float(next(r for r in rows if r.get("val/L1"))["val/L1"]))


def test_persistent_nonfinite_losses_stop_with_a_checkpoint_from_before(tmp_path: Path) -> None:
    injector = ["+callbacks.fault._target_=helpers.NanInputsFromBatch", "+callbacks.fault.start=5"]
    with pytest.raises(TrainingDivergedError, match=r"non-finite in 3 consecutive steps"):
        run_tiny(tmp_path, *injector, "task.nonfinite_patience=3", "scheduler.n_epochs=3")
    before = weights(tmp_path / "run", "before_nonfinite.ckpt")
    assert all(torch.isfinite(v).all() for v in before.values() if v.is_floating_point())
    # the skipped steps changed nothing: the weights are those after batch 5 (epoch 1)
    after_epoch_1 = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert after_epoch_1["epoch"] == 0


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_tiny(tmp_path, "trainer.max_epochs=1")
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = path.read_bytes()
    checkpoint = torch.load(path, weights_only=False)

    def crash(self, data):
        self.f.write(data[: len(data) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(fsspec.implementations.local.LocalFileOpener, "write", crash)
    with pytest.raises(OSError, match="No space left"):
        TorchCheckpointIO().save_checkpoint(checkpoint, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        ["last.ckpt", *[p.name for p in path.parent.glob("best_*")]]
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr=-0.1", "optim.generator.lr=-0.1 must be > 0"),
        ("optim.beta1=1.5", "optim.generator.betas=[1.5, 0.999]"),
        ("data.crop_size=80", "data.load_size=72 is smaller than data.crop_size=80"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be >= 1"),
        ("task.inference=eval", "inference='eval' is not one of paper, standard"),
    ],
)
def test_bad_config_fails_before_training_naming_the_key(
    tmp_path: Path, override: str, message: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run_tiny(tmp_path, override)
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert time.perf_counter() - started < 30


def test_unknown_generator_is_rejected_at_composition(tmp_path: Path) -> None:
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="model/unet1024"):
        compose_run(["model=unet1024"], tmp_path)


class _Dies(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        os.kill(os.getpid(), signal.SIGKILL)
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
        next(iter(DataLoader(_Dies(), num_workers=1)))


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


def _prepare_after(barrier: multiprocessing.synchronize.Barrier, root: Path) -> None:
    barrier.wait()
    SyntheticPairedDataModule(root, num_images={"train": 6, "test": 2}).prepare_data()


def test_parallel_jobs_creating_the_same_dataset_do_not_collide(tmp_path: Path) -> None:
    # the jobs of a sweep start together and all find the dataset missing
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(3)
    root = tmp_path / "data" / "synthetic"
    jobs = [fork.Process(target=_prepare_after, args=(barrier, root)) for _ in range(3)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=120)
    assert [job.exitcode for job in jobs] == [0, 0, 0]
    assert sorted(p.name for p in (root / "train").iterdir()) == [f"{i:04d}.png" for i in range(6)]
    assert len(list((root / "test").iterdir())) == 2
    assert [p.name for p in root.parent.iterdir()] == ["synthetic"], "no lock or staging left"


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
    assert read_metrics(run) == both
