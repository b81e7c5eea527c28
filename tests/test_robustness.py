"""Faults: interrupted runs resume exactly, divergence stops cleanly, failed writes leave the
previous checkpoint, parallel jobs share a dataset (bad input: test_bad_input.py; loggers:
test_logger_faults.py)."""

from __future__ import annotations

import errno
import math
import multiprocessing
import multiprocessing.synchronize
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException

from helpers import (
    ALLOW_MAX_EPOCHS,
    TINY,
    cli,
    compose_run,
    read_metrics,
    run_tiny,
    tiny_cli,
    untimed,
)
from pix2pix_lit.checkpoint_file import epochs_trained
from pix2pix_lit.data import SyntheticPairedDataModule
from pix2pix_lit.errors import ConfigError, StorageError, TrainingDivergedError
from pix2pix_lit.inference.checkpoint import load_task
from pix2pix_lit.training.storage import PARTIAL_SUFFIX

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


@pytest.mark.parametrize(
    ("signum", "num_workers", "group"),
    [
        ("SIGTERM", 0, False),
        ("SIGTERM", 2, False),
        ("SIGTERM", 2, True),
        ("SIGINT", 0, False),
        ("SIGINT", 2, True),
    ],
)
def test_signal_mid_epoch_saves_a_checkpoint_that_resumes_bit_exactly(
    uninterrupted: Path, tmp_path: Path, signum: str, num_workers: int, group: bool, recwarn
) -> None:
    # group: the signal reaches the data-loader workers as well (a terminal's Ctrl+C, scancel,
    # kill -- -<pgid>); with the default loader (workers started anew each epoch, after the
    # run's signal handlers)
    persistent = num_workers > 0 and not group
    workers = [f"data.num_workers={num_workers}", f"data.persistent_workers={persistent}"]
    injector = ["+callbacks.fault._target_=helpers.SignalAtBatch", "+callbacks.fault.batch=5",
                f"+callbacks.fault.signum={signum}", f"+callbacks.fault.group={group}"]  # fmt: skip
    with pytest.raises(SIGTERMException):
        run_tiny(tmp_path, *THREE_EPOCHS, *workers, *injector, out="run")
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    # stopped inside the second epoch, after its 1st batch (an odd number of optimizer steps
    # into it: the case in which Lightning warns that the loader is not resumable)
    assert saved["epoch"] == 1
    assert saved["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["completed"] == 1
    assert epochs_trained(saved) == 1  # the unfinished second epoch is not counted
    # resume in place: same run dir, ckpt_path=last
    run_tiny(tmp_path, *THREE_EPOCHS, *workers, "ckpt_path=last", out="run")
    assert_same_weights(weights(uninterrupted), weights(tmp_path / "run"))
    resumed = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert epochs_trained(resumed) == 3
    # Lightning's "dataloader is not resumable ... unreliable results" would contradict that
    assert not [w for w in recwarn if "not resumable" in str(w.message)]


# two epochs of the tiny setup, logged every other step, through the command line
TWO_EPOCHS_CLI = ("logger=csv", "trainer.max_epochs=2", "trainer.limit_val_batches=1",
                  "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=2")  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a run of TWO_EPOCHS_CLI (no loader workers) and of its data."""
    root = tmp_path_factory.mktemp("uninterrupted_cli")
    full = cli(*tiny_cli(root), *TWO_EPOCHS_CLI, f"hydra.run.dir={root / 'run'}", cwd=root)
    assert full.returncode == 0, full.stderr[-3000:]
    return root


@pytest.mark.slow
@pytest.mark.parametrize(("num_workers", "kill_at"), [(0, 5), (1, 5), (1, 6)])
def test_a_run_killed_after_an_end_of_epoch_checkpoint_resumes_exactly(
    uninterrupted_cli: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    num_workers: int,
    kill_at: int,
) -> None:
    # SIGKILL, as when the machine is taken away: no handler runs, and the run resumes from
    # the checkpoint written at the end of its first epoch (batch 5 or 6 of 8: in the second).
    # With a loader worker, the resumed run once skipped the second epoch altogether: it
    # drew its indices from the first, exhausted epoch before Lightning set the next one
    tests = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]))
    args = [*tiny_cli(uninterrupted_cli), *TWO_EPOCHS_CLI, f"data.num_workers={num_workers}"]
    kill = ["+callbacks.fault._target_=helpers.SignalAtBatch", f"+callbacks.fault.batch={kill_at}",
            "+callbacks.fault.signum=SIGKILL"]  # fmt: skip
    run = tmp_path / "run"
    assert cli(*args, *kill, f"hydra.run.dir={run}", cwd=tmp_path).returncode == -9
    resumed = cli(*args, "ckpt_path=last", f"hydra.run.dir={run}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    full = uninterrupted_cli / "run"
    assert_same_weights(weights(full), weights(run))

    # and the run's record: every row once, as the uninterrupted run wrote it
    assert untimed(read_metrics(run)) == untimed(read_metrics(full))
    # the run's time goes on from the checkpoint, not from 0
    elapsed = [float(r["time/elapsed_s"]) for r in read_metrics(run) if r.get("time/elapsed_s")]
    assert len(elapsed) == 2 and elapsed[1] > elapsed[0]


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


def test_persistent_nonfinite_losses_stop_with_the_exact_state_from_before(tmp_path: Path) -> None:
    # NaN inputs from the first batch of epoch 1 on: every later step is skipped
    injector = ["+callbacks.fault._target_=helpers.NanInputsFromBatch", "+callbacks.fault.start=4"]
    with pytest.raises(TrainingDivergedError) as caught:
        run_tiny(tmp_path, *injector, "task.nonfinite_patience=3", "scheduler.n_epochs=3")
    assert str(caught.value) == (
        "the D loss was non-finite in 3 consecutive steps (task.nonfinite_patience=3); training "
        "stopped with the weights from before the fault in checkpoints/before_nonfinite.ckpt. "
        "Try a lower optim.lr, task.clip_grad_norm > 0, or trainer.precision=32"
    )
    # the weights and batch-norm statistics (and their counters) are exactly those of the end
    # of epoch 0, although the faulty batches ran forward passes through the networks
    before = weights(tmp_path / "run", "before_nonfinite.ckpt")
    assert any(key.endswith("running_var") for key in before)
    assert_same_weights(before, weights(tmp_path / "run", "last.ckpt"))


def fail_checkpoint_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every write of a checkpoint (into its ``.part`` file) fail as on a full disk."""
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(f".ckpt{PARTIAL_SUFFIX}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


def test_a_full_disk_while_checkpointing_is_one_line_and_the_previous_checkpoint_resumes(
    uninterrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_tiny(tmp_path, *THREE_EPOCHS, "trainer.max_epochs=1")
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    with monkeypatch.context() as full_disk, pytest.raises(StorageError) as caught:
        fail_checkpoint_writes(full_disk)
        run_tiny(tmp_path, *THREE_EPOCHS, "ckpt_path=last", ALLOW_MAX_EPOCHS)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"could not write {last.parent}/")
    assert "No space left on device" in message
    assert last.read_bytes() == before
    assert not list(last.parent.glob(f".*{PARTIAL_SUFFIX}"))
    # the previous checkpoint resumes and the run ends as if nothing had happened
    run_tiny(tmp_path, *THREE_EPOCHS, "ckpt_path=last", ALLOW_MAX_EPOCHS)
    assert_same_weights(weights(uninterrupted), weights(tmp_path / "run"))


# Trains in a subprocess and halts it half-way through its second write of last.ckpt (the
# end of epoch 1, or the emergency checkpoint of a SIGTERM in epoch 1), for the test to kill.
_HALT_IN_SECOND_LAST_CKPT_WRITE = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from helpers import run_tiny
real_write, written = os.write, []
def write(fd, data):
    if os.readlink(f"/proc/self/fd/{{fd}}").endswith(".last.ckpt.part"):
        written.append(fd)
        if len(written) == 2:
            real_write(fd, bytes(memoryview(data)[: len(data) // 2]))
            print("half written", flush=True)
            time.sleep(600)
    return real_write(fd, data)
os.write = write
run_tiny(Path({tmp!r}), *{overrides!r})
"""


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["epoch_end", "emergency"])
def test_a_checkpoint_writer_killed_mid_write_leaves_the_previous_one_to_resume(
    uninterrupted: Path, tmp_path: Path, writer: str
) -> None:
    overrides = list(THREE_EPOCHS)
    if writer == "emergency":
        overrides += ["+callbacks.fault._target_=helpers.SignalAtBatch", "+callbacks.fault.batch=6"]
    script = _HALT_IN_SECOND_LAST_CKPT_WRITE.format(
        tests=str(Path(__file__).parent), tmp=str(tmp_path), overrides=overrides
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output = []
        for line in proc.stdout:
            if line.startswith("half written"):
                break
            output.append(line)
        assert proc.poll() is None, "".join(output[-30:])
    finally:
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.wait()
    checkpoints = tmp_path / "run" / "checkpoints"
    assert (checkpoints / f".last.ckpt{PARTIAL_SUFFIX}").is_file()  # the half-written one
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["epoch"] == 0
    run_tiny(tmp_path, *THREE_EPOCHS, "ckpt_path=last")
    assert not list(checkpoints.glob(f".*{PARTIAL_SUFFIX}")), "the next owner cleans up"
    assert_same_weights(weights(uninterrupted), weights(tmp_path / "run"))


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


def test_validation_leaves_no_trace_in_training(tmp_path: Path) -> None:
    # validating every epoch, with sanity checks, or only once at the end: the same weights
    common = ("scheduler.n_epochs=1", "scheduler.n_epochs_decay=1", "seed=11", "logger=none")
    run_tiny(tmp_path, *common, "trainer.num_sanity_val_steps=2", out="often")
    run_tiny(tmp_path, *common, "trainer.num_sanity_val_steps=0",
             "trainer.check_val_every_n_epoch=2", out="once")  # fmt: skip
    assert_same_weights(weights(tmp_path / "often"), weights(tmp_path / "once"))


def test_test_true_evaluates_the_best_checkpoint_on_the_test_split(tmp_path: Path) -> None:
    # the best checkpoint by a metric that only falls (the learning rate) is epoch 0's
    best_is_first = ("callbacks.model_checkpoint.monitor=train/lr_G",
                     "callbacks.model_checkpoint.mode=max")  # fmt: skip
    # the periodic checkpoints' newest is the last weights: test=true must not take it as best
    periodic = "callbacks.periodic_checkpoint.every_n_epochs=1"
    common = ("scheduler.n_epochs=0", "scheduler.n_epochs_decay=2", *best_is_first, periodic)
    metrics = run_tiny(tmp_path, *common, "test=true")
    checkpoints = tmp_path / "run" / "checkpoints"
    cfg = compose_run([*TINY, f"paths.data_dir={tmp_path / 'data'}"], tmp_path / "check")
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False
    )

    def test_l1(ckpt: Path) -> float:
        return trainer.test(load_task(ckpt), datamodule=instantiate(cfg.data))[0]["test/L1"]

    # what epoch 0's weights score on the test split, and not what the last weights score
    assert metrics["test/L1"] == pytest.approx(test_l1(checkpoints / "best_epoch000.ckpt"))
    assert metrics["test/L1"] != pytest.approx(test_l1(checkpoints / "last.ckpt"))
