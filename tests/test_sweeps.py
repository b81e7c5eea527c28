"""Sweeps on real launchers: local parallel jobs, SLURM submission, Optuna search, W&B groups."""

from __future__ import annotations

import json
import math
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import open_dict, read_write

from helpers import CONF, ONE_BATCH, TINY, TINY_UNET, cli, compose_run
from pix2pix_lit.data import make_synthetic_paired_dataset
from pix2pix_lit.launching.device_slots import CPU_SLOT, device_slots
from pix2pix_lit.launching.slot_locks import slot_holders
from pix2pix_lit.loggers import wandb_logger

# -- local parallel launcher ---------------------------------------------------------------


@pytest.fixture(scope="module")
def parallel_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two jobs of the tiny task at once with hydra/launcher=local_parallel, logged to W&B."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    pytest.importorskip("matplotlib")  # the report's figure
    tmp = tmp_path_factory.mktemp("sweep")
    out = cli(
        "-m",
        "hydra/launcher=local_parallel",
        "loss.lambda_l1=0,100",
        *TINY,
        *TINY_UNET,
        *ONE_BATCH,
        "logger=[csv,wandb]",
        "data.num_workers=1",
        f"paths.data_dir={tmp / 'data'}",
        f"paths.log_dir={tmp / 'logs'}",
        cwd=tmp,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (sweep,) = (tmp / "logs" / "pix2pix" / "multiruns").iterdir()
    return sweep


def test_parallel_jobs_run_side_by_side_in_their_own_dirs(parallel_sweep: Path) -> None:
    jobs = sorted(p for p in parallel_sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [j.name for j in jobs] == ["0", "1"]
    slots, seeds = set(), []
    for job, value in zip(jobs, ("0", "100"), strict=True):
        assert f"loss.lambda_l1={value}" in (job / ".hydra" / "overrides.yaml").read_text()
        ckpt = torch.load(job / "checkpoints" / "last.ckpt", weights_only=False)
        seeds.append(ckpt["pix2pix_lit_config"]["seed"])
        # each worker process took its own device slot (2 CPU slots: 2 jobs at once)
        log = (job / "train.log").read_text()
        slots |= {line.split("slot ")[1][:1] for line in log.splitlines() if "slot " in line}
    assert slots == {"0", "1"}
    assert seeds == [42, 43], "seed = base seed + job number"
    # and they ran at the same time: each started before the other had finished
    (start_0, end_0), (start_1, end_1) = (job_interval(job) for job in jobs)
    assert start_0 < end_1 and start_1 < end_0


def job_interval(job: Path) -> tuple[float, float]:
    """When a job started (its first log line) and ended (its final metrics were written)."""
    first_line = (job / "train.log").read_text().splitlines()[0]
    # Hydra's log format: [2026-11-30 14:09:14,123][logger][LEVEL] - message
    started = datetime.strptime(first_line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return started, (job / "final_metrics.json").stat().st_mtime


def test_parallel_jobs_share_one_wandb_group_tagged_with_their_overrides(
    parallel_sweep: Path,
) -> None:
    group = f"pix2pix_{parallel_sweep.name}".encode()
    for job, value in (("0", "0"), ("1", "100")):
        (record,) = (parallel_sweep / job / "wandb").glob("offline-run-*/run-*.wandb")
        # the offline run's record file holds the run's group, name and tags
        data = record.read_bytes()
        assert group in data
        assert f"pix2pix-{job}".encode() in data
        assert f"loss.lambda_l1={value}".encode() in data


def test_report_turns_the_sweep_into_a_table_and_a_figure(parallel_sweep: Path) -> None:
    out = cli(str(parallel_sweep), module="pix2pix_lit.report", cwd=parallel_sweep)
    assert out.returncode == 0, out.stderr[-3000:]
    table = (parallel_sweep / "report.md").read_text()
    rows = [
        line for line in table.splitlines() if line.startswith("| 0 ") or line.startswith("| 1 ")
    ]
    assert len(rows) == 2
    assert "`loss.lambda_l1=0`" in rows[0] and "`loss.lambda_l1=100`" in rows[1]
    assert "val/PSNR" in table and "G_L1" in table
    assert (parallel_sweep / "report.png").stat().st_size > 10_000


def test_a_failed_job_does_not_end_the_sweep(tmp_path: Path) -> None:
    out = cli(
        "-m",
        "task.nonfinite_patience=-1,10",  # job 0 has a config error, job 1 is fine
        *TINY,
        *TINY_UNET,
        *ONE_BATCH,
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.log_dir={tmp_path / 'logs'}",
        cwd=tmp_path,
    )
    (sweep,) = (tmp_path / "logs" / "pix2pix" / "multiruns").iterdir()
    assert (sweep / "1" / "checkpoints" / "last.ckpt").is_file(), out.stderr[-3000:]
    assert not (sweep / "0" / "checkpoints").exists()
    assert (
        "error: task.nonfinite_patience=-1 must be >= 0" in (sweep / "0" / "train.log").read_text()
    )
    # the sweep still fails, naming the job and the error without a long traceback
    assert out.returncode != 0
    report = out.stderr[out.stderr.index("Error executing job") :]
    assert "'task.nonfinite_patience=-1'" in report
    assert "ConfigError: task.nonfinite_patience=-1 must be >= 0" in report
    assert report.count('File "') == 1


def test_a_sweep_run_again_into_its_folder_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # job 1 is stopped by a SIGTERM after its first batch, as a preempted sweep is; run again
    # with ckpt_path=auto, the finished job reports what it recorded and job 1 continues
    tests = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]))
    interrupt_job_1 = ["+callbacks.fault._target_=helpers.SignalAtBatch",
                       "+callbacks.fault.batch=${hydra:job.num}"]  # fmt: skip
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "loss.lambda_l1=10,100",
        *TINY,
        *TINY_UNET,
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        *interrupt_job_1,
        f"hydra.sweep.dir={sweep}",
    ]
    args += [f"paths.data_dir={tmp_path / 'data'}", f"paths.log_dir={tmp_path / 'logs'}"]
    first = cli(*args, cwd=tmp_path)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "interrupted: a resumable checkpoint was saved" in first.stderr
    finished = sweep / "0" / "checkpoints" / "last.ckpt"
    step = torch.load(finished, weights_only=False)["global_step"]
    assert step == 8  # 4 batches, 2 optimizer steps each
    interrupted = torch.load(sweep / "1" / "checkpoints" / "last.ckpt", weights_only=False)
    assert interrupted["global_step"] == 2
    recorded = json.loads((sweep / "0" / "final_metrics.json").read_text())

    again = cli(*args, "ckpt_path=auto", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    # the finished job is restored, trains nothing and reports the metric it recorded
    assert f"Restored all states from the checkpoint at {finished}" in again.stderr
    assert torch.load(finished, weights_only=False)["global_step"] == step
    assert (
        json.loads((sweep / "0" / "final_metrics.json").read_text())["val/L1"] == recorded["val/L1"]
    )
    # the interrupted job continues where it stopped and finishes its epoch
    ckpt = torch.load(sweep / "1" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == step
    assert ckpt["pix2pix_lit_config"]["loss"]["lambda_l1"] == 100
    assert "val/L1" in json.loads((sweep / "1" / "final_metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("stopped", ["launcher", "one worker"])
def test_a_sigterm_stops_a_parallel_sweep_as_one(tmp_path: Path, stopped: str) -> None:
    """A SIGTERM to the launcher alone, or to one of its workers: every running job saves a
    checkpoint after its batch, the launcher ends once they have, and no worker outlives it
    to go on training (nor starts the sweep's next job)."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=local_parallel", "loss.lambda_l1=1,10,100", *TINY, *TINY_UNET,
            "trainer.max_epochs=1000", "trainer.limit_val_batches=1", "data.num_workers=0",
            f"paths.data_dir={tmp_path / 'data'}", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "pix2pix_lit.train", *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    first = [sweep / job / "checkpoints" / "last.ckpt" for job in ("0", "1")]
    try:
        deadline = time.monotonic() + 300
        while not all(ckpt.is_file() for ckpt in first):  # both jobs well into training
            assert launcher.poll() is None, launcher.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the jobs did not get to their first checkpoint"
            time.sleep(0.5)
        workers = slot_holders(sweep / ".device_slots")
        assert sorted(workers.values()) == ["running", "running"]
        steps = {c: torch.load(c, weights_only=False)["global_step"] for c in first}
        os.kill(launcher.pid if stopped == "launcher" else min(workers), signal.SIGTERM)
        _, stderr = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
        for pid in slot_holders(sweep / ".device_slots"):
            os.kill(pid, signal.SIGKILL)
    assert launcher.returncode == 1, stderr[-3000:]
    assert "the sweep was stopped" in stderr
    # no worker goes on: every slot is free, and the job folders stay as the stop left them
    assert slot_holders(sweep / ".device_slots") == {}
    for ckpt in first:  # each job saved where it stopped, after its last epoch's checkpoint
        saved = torch.load(ckpt, weights_only=False)
        assert saved["global_step"] > steps[ckpt]
        assert "Stopped early: saved" in (ckpt.parents[1] / "train.log").read_text()
    assert not (sweep / "2" / "checkpoints").exists()  # the third job never started
    mtimes = [c.stat().st_mtime for c in first]
    time.sleep(3)
    assert [c.stat().st_mtime for c in first] == mtimes


def test_device_slots_follow_the_gpus() -> None:
    assert device_slots(["0", "1"], jobs_per_gpu=2, cpu_jobs=3) == ["0", "0", "1", "1"]
    assert device_slots([], jobs_per_gpu=2, cpu_jobs=3) == [CPU_SLOT] * 3


def test_each_process_holds_its_own_slot(tmp_path: Path) -> None:
    claim = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from pix2pix_lit.launching.slot_locks import claim_slot
        slots = Path({str(tmp_path)!r})
        print(claim_slot(slots, 2), claim_slot(slots, 2), flush=True)
        time.sleep(5)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", claim], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = sorted(p.stdout.readline().split() for p in procs)
    for p in procs:
        p.kill()
    # a process keeps its slot for all its jobs; two live processes never share one
    assert outputs == [["0", "0"], ["1", "1"]]


# -- SLURM ------------------------------------------------------------------------------------


def job_function(cfg) -> None:
    """Stands in for the training entry point in submitted jobs (never runs here)."""


def test_slurm_launcher_submits_an_array_with_our_sbatch_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitit = pytest.importorskip("submitit")
    # stand-ins for SLURM's commands: sbatch accepts the job (the generated script stays in
    # the sweep folder), srun only has to exist
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command, output in (("sbatch", "Submitted batch job 4242"), ("srun", "")):
        path = bin_dir / command
        path.write_text(f"#!/bin/sh\necho {output}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(submitit.SlurmJob, "results", lambda self: ["done"])

    sweep_dir = tmp_path / "sweep"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", f"hydra.sweep.dir={sweep_dir}"],
            return_hydra_config=True,
        )
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=job_function, config=cfg)
    assert type(launcher).__name__ == "SlurmLauncher"

    results = launcher.launch([["loss.lambda_l1=0"], ["loss.lambda_l1=100"]], initial_job_idx=0)
    assert results == ["done", "done"]
    (script,) = (sweep_dir / ".submitit").glob(".submission_file_*.sh")
    flags = {line for line in script.read_text().splitlines() if line.startswith("#SBATCH")}
    for flag in (
        "--partition=gpu",
        "--gpus-per-node=1",
        "--ntasks-per-node=1",
        "--cpus-per-task=8",
        "--mem=32GB",
        "--time=1440",
        "--array=0-1%2",
        "--signal=USR2@120",
        "--requeue",
    ):
        assert f"#SBATCH {flag}" in flags, flag
    # each job may be resubmitted after 3 time-outs (preemptions do not count)
    pickles = list((sweep_dir / ".submitit").glob("*/*_submitted.pkl"))
    pickles += list((sweep_dir / ".submitit").glob("*.pkl"))
    submissions = [submitit.helpers.DelayedSubmission.load(p) for p in pickles]
    assert submissions and all(s._timeout_countdown == 3 for s in submissions)


# -- Optuna -----------------------------------------------------------------------------------


def test_optuna_search_tunes_l1_weight_lr_and_beta1_against_val_l1(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
    from optuna.distributions import LogUniformDistribution, UniformDistribution

    cfg = compose_run(["hparams_search=optuna"], tmp_path)
    assert cfg.optimized_metric == "val/L1"
    sweeper_cfg = HydraConfig.get().sweeper
    sweeper = instantiate(sweeper_cfg)
    assert type(sweeper).__name__ == "OptunaSweeper"
    assert sweeper_cfg.direction == "minimize"
    assert sweeper_cfg.sampler._target_ == "optuna.samplers.TPESampler"
    space, fixed = create_params_from_overrides([f"{k}={v}" for k, v in sweeper_cfg.params.items()])
    assert not fixed
    assert space["loss.lambda_l1"] == LogUniformDistribution(1.0, 300.0)
    assert space["optim.lr"] == LogUniformDistribution(1e-5, 1e-3)
    assert space["optim.beta1"] == UniformDistribution(0.0, 0.9)


@pytest.mark.slow
def test_optuna_sweep_goes_on_past_failed_trials_and_records_the_best(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    make_synthetic_paired_dataset(tmp_path / "data" / "synthetic")
    out = cli(
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=4",
        # trials drawing -1 fail (a config error); the search records them and goes on
        "task.nonfinite_patience=choice(-1,10)",
        *TINY,
        *TINY_UNET,
        "+trainer.fast_dev_run=true",
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.log_dir={tmp_path / 'logs'}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "pix2pix" / "multiruns").iterdir()
    best = (sweep / "optimization_results.yaml").read_text()
    assert "best_params" in best and "optim.lr" in best and "loss.lambda_l1" in best
    assert math.isfinite(float(best.split("best_value:")[1].split()[0]))
    assert "task.nonfinite_patience: 10" in best
    assert "Failed experiment: task.nonfinite_patience=-1 must be >= 0" in out.stdout


# -- W&B --------------------------------------------------------------------------------------


def test_wandb_run_of_a_sweep_job_joins_the_sweep_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = ["logger=wandb", "loss.lambda_l1=10", f"paths.data_dir={tmp_path}", "tags=[paper]"]
    # paths.* (where files live) and tags=... (already tags) are not tagged
    cfg = compose_run(overrides, tmp_path)
    hydra_cfg = HydraConfig.instance().cfg
    with read_write(hydra_cfg.hydra), open_dict(hydra_cfg.hydra):
        hydra_cfg.hydra.mode = RunMode.MULTIRUN
        hydra_cfg.hydra.job.num = 3
        hydra_cfg.hydra.sweep.dir = str(tmp_path / "multiruns" / "2026-01-02_03-04-05_000006")
    logger = instantiate(cfg.logger.wandb)
    init = logger._wandb_init
    assert init["group"] == "pix2pix_2026-01-02_03-04-05_000006"
    assert init["name"] == "pix2pix-3" and init["job_type"] == "sweep"
    assert init["tags"] == ["paper", "logger=wandb", "loss.lambda_l1=10"]


def test_wandb_single_run_has_no_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_run(["logger=wandb"], tmp_path)
    init = instantiate(cfg.logger.wandb)._wandb_init
    assert init["group"] is None and init["name"] == "pix2pix" and init["tags"] == []


def test_wandb_online_sessions_of_a_run_continue_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "")
    first = wandb_logger(tmp_path, offline=False)._wandb_init
    resumed = wandb_logger(tmp_path, offline=False)._wandb_init
    assert first["id"] == resumed["id"] == (tmp_path / "wandb" / "run_id").read_text()
    assert resumed["resume"] == "allow"
    assert wandb_logger(tmp_path / "other", offline=False)._wandb_init["id"] != first["id"]
    # offline runs keep ids of their own: syncing two offline runs under one id keeps one
    assert wandb_logger(tmp_path, offline=True)._wandb_init["id"] is None
