"""Data-parallel training: trainer=ddp_sim (2 CPU processes, gloo) end to end, and the
sampler's split of each epoch between processes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.plugins.environments.lightning import find_free_network_port
from omegaconf import open_dict, read_write
from torch import nn

from helpers import TINY_UNET, cli, compose_run, read_metrics
from pix2pix_lit.data.sampling import ResumableRandomSampler
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.launching.ddp import NetworkDDP, NetworkDDPStrategy, TrainingSyncBatchNorm
from pix2pix_lit.launching.ddp_processes import sweep_job_command

TESTS = Path(__file__).resolve().parent


class SaveRankState(L.Callback):
    """Writes ``<dirpath>/rank<r>.pt``: the rank's final weights and the images it trained on."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.paths: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.paths += batch["A_path"]

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        torch.save(
            {"state_dict": state, "paths": self.paths, "metrics": metrics},
            self.dirpath / f"rank{trainer.global_rank}.pt",
        )


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, dict[str, Any]]]:
    """One epoch of the tiny task on 2 CPU processes, through the command line; the second
    batch of process 1 has NaN inputs."""
    tmp = tmp_path_factory.mktemp("ddp")
    # the second process imports SaveRankState from this file
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
        out = _train_on_two_processes(tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = list((tmp / "logs" / "pix2pix" / "runs").iterdir())
    assert len(runs) == 1, f"one run folder for both processes, found {runs}"
    ranks = {r: torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in (0, 1)}
    return runs[0], ranks


def _train_on_two_processes(tmp: Path) -> subprocess.CompletedProcess:
    return cli(
        "data=synthetic",
        "discriminator.ndf=8",
        *TINY_UNET,
        "trainer=ddp_sim",
        "trainer.max_epochs=1",
        "trainer.num_sanity_val_steps=0",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        f"paths.data_dir={tmp / 'data'}",
        f"paths.log_dir={tmp / 'logs'}",
        f"+callbacks.rank_state._target_={__name__}.SaveRankState",
        f"+callbacks.rank_state.dirpath={tmp}",
        "+callbacks.fault._target_=helpers.NanInputsFromBatch",
        "+callbacks.fault.start=1",
        "+callbacks.fault.stop=2",
        "+callbacks.fault.rank=1",
        cwd=tmp,
        timeout=300,  # ranks that disagree on a step wait for each other for ever
    )


def test_ddp_sim_logs_checkpoints_and_draws_once(ddp_run) -> None:
    run, _ = ddp_run
    rows = read_metrics(run)
    # 8 training pairs, batch 2, 2 processes: 2 steps per process, logged by rank 0 only
    assert len([r for r in rows if r.get("train/G_L1_step")]) == 2
    assert len([r for r in rows if r.get("train/G_L1_epoch")]) == 1
    assert len([r for r in rows if r.get("val/L1")]) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best_epoch000.ckpt",
        "last.ckpt",
    ]
    assert [p.name for p in (run / "images").iterdir()] == ["epoch_000.png"]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    # checkpoints keep the keys of a single-device run
    assert not [k for k in ckpt["state_dict"] if ".module." in k]
    assert ckpt["global_step"] == 2  # one D step + one G step; the second batch was skipped


def test_ddp_sim_nonfinite_loss_on_one_process_is_skipped_by_all(ddp_run) -> None:
    run, ranks = ddp_run
    # process 0's losses were finite, yet it skipped both steps of that batch with process 1
    # (had it stepped alone, it would have waited for process 1's gradients for ever)
    assert [
        float(r["train/skipped_steps"]) for r in read_metrics(run) if r.get("train/skipped_steps")
    ] == [2.0]
    assert all(math.isfinite(v) for r in (0, 1) for v in ranks[r]["metrics"].values())
    logged = [float(v) for row in read_metrics(run) for v in row.values() if v]
    assert logged and all(math.isfinite(v) for v in logged)


def test_ddp_sim_epoch_means_are_over_all_processes(ddp_run) -> None:
    _, ranks = ddp_run
    # one logged batch per process: the epoch mean is the mean of the two processes' values
    for name in ("G_L1", "D_fake"):
        step = [ranks[r]["metrics"][f"train/{name}_step"] for r in (0, 1)]
        assert step[0] != step[1]
        for r in (0, 1):
            assert ranks[r]["metrics"][f"train/{name}_epoch"] == pytest.approx(sum(step) / 2)


def test_ddp_sim_ranks_end_with_identical_weights(ddp_run) -> None:
    _, ranks = ddp_run
    weights = [ranks[r]["state_dict"] for r in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    # BatchNorm running statistics are local to each process (DDP broadcasts rank 0's at
    # the start of every forward pass); every parameter must match exactly.
    params = [k for k in weights[0] if not k.endswith(("running_mean", "running_var", "tracked"))]
    assert len(params) > 20
    for key in params:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_ddp_sim_ranks_split_the_epoch(ddp_run) -> None:
    _, ranks = ddp_run
    seen = [ranks[r]["paths"] for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 4
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0]) | set(seen[1])) == 8


@pytest.mark.slow
def test_ddp_jobs_of_a_local_sweep_each_train_on_two_processes(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
        out = cli(
            "-m",
            "loss.lambda_l1=10,100",
            "data=synthetic",
            "discriminator.ndf=8",
            *TINY_UNET,
            "trainer=ddp_sim",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            f"paths.data_dir={tmp_path / 'data'}",
            f"paths.log_dir={tmp_path / 'logs'}",
            f"+callbacks.rank_state._target_={__name__}.SaveRankState",
            "+callbacks.rank_state.dirpath=${paths.output_dir}",
            cwd=tmp_path,
            timeout=300,
        )
    assert out.returncode == 0, out.stderr[-3000:]
    # the extra processes ran their own job only: no sweep of their own, no other folders
    assert [p.name for p in (tmp_path / "logs" / "pix2pix").iterdir()] == ["multiruns"]
    (sweep,) = (tmp_path / "logs" / "pix2pix" / "multiruns").iterdir()
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "multirun.yaml"]
    for job, l1 in (("0", 10.0), ("1", 100.0)):
        ranks = [torch.load(sweep / job / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
        # the same seed (42 + job) on both processes: they split one shuffled epoch
        assert not set(ranks[0]["paths"]) & set(ranks[1]["paths"])
        assert len(set(ranks[0]["paths"]) | set(ranks[1]["paths"])) == 8
        assert (sweep / job / "train_ddp_process_1.log").is_file()
        ckpt = torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=False)
        assert ckpt["pix2pix_lit_config"]["loss"]["lambda_l1"] == l1
        assert ckpt["pix2pix_lit_config"]["seed"] == 42 + int(job)


def test_a_sweep_jobs_extra_processes_get_the_jobs_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose_run(["loss.lambda_l1=10"], tmp_path)  # sets the HydraConfig of a job
    hydra_cfg = HydraConfig.instance().cfg
    with read_write(hydra_cfg.hydra), open_dict(hydra_cfg.hydra):
        hydra_cfg.hydra.job.num = 3
        hydra_cfg.hydra.runtime.output_dir = str(tmp_path / "sweep" / "3")
    argv = ["prog", "-m", "-cn", "train", "loss.lambda_l1=10,100", "--config-dir=/my/conf"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(
        "pix2pix_lit.launching.ddp_processes.get_original_cwd", lambda: str(tmp_path)
    )
    command, cwd = sweep_job_command(1)
    assert command[0] == sys.executable
    assert command[command.index("-cn") :] == [
        "-cn", "train", "--config-dir=/my/conf",
        "loss.lambda_l1=10",
        f'hydra.run.dir="{tmp_path / "sweep" / "3"}"',
        "hydra.job.name=train_ddp_process_1",
        "hydra.job.num=3",
        "hydra.output_subdir=null",
    ]  # fmt: skip
    assert cwd == str(tmp_path)


@pytest.mark.parametrize("num_samples", [7, 8])
def test_sampler_shares_are_equal_cover_the_epoch_and_resume(num_samples: int) -> None:
    replicas = 3
    shares = [list(ResumableRandomSampler(num_samples, 5, replicas, r)) for r in range(replicas)]
    assert len({len(s) for s in shares}) == 1
    assert {i for s in shares for i, _ in s} == set(range(num_samples))
    # one replica is the plain shuffled order, as before
    single = list(ResumableRandomSampler(num_samples, 5))
    assert set(single) == {p for share in shares for p in share}
    # a state saved after k samples per process continues every share where it stopped
    for k in range(len(shares[0])):
        state = ResumableRandomSampler(num_samples, 5, replicas, 0).state_dict(consumed=k)
        for rank in range(replicas):
            resumed = ResumableRandomSampler(num_samples, 5, replicas, rank)
            resumed.load_state_dict(state)
            assert list(resumed) == shares[rank][k:]
    # one saved at the end of the epoch goes on with the whole next epoch, also when iterated
    # before set_epoch (a loader with workers does): an exhausted epoch would have no batches
    state = ResumableRandomSampler(num_samples, 5, replicas, 0).state_dict(len(shares[0]))
    for rank in range(replicas):
        resumed, next_epoch = (ResumableRandomSampler(num_samples, 5, replicas, rank) for _ in "ab")
        resumed.load_state_dict(state)
        next_epoch.set_epoch(1)
        assert list(resumed) == list(next_epoch) != shares[rank]


def test_sync_batchnorm_on_cpu_names_the_key(tmp_path: Path) -> None:
    cfg = compose_run(["trainer=ddp_sim", "trainer.sync_batchnorm=true"], tmp_path)
    assert cfg.trainer.strategy._target_.endswith("NetworkDDPStrategy")
    assert cfg.trainer.use_distributed_sampler is False
    strategy = NetworkDDPStrategy(parallel_devices=[torch.device("cpu")] * 2)
    strategy._layer_sync = L.pytorch.plugins.TorchSyncBatchNorm()
    with pytest.raises(ConfigError, match=r"trainer\.sync_batchnorm=true needs CUDA"):
        strategy.setup(L.Trainer(accelerator="cpu", logger=False))


# -- the wrappers, in a one-process group ----------------------------------------------------


@pytest.fixture
def process_group():
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{find_free_network_port()}", rank=0, world_size=1
    )
    yield
    dist.destroy_process_group()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.BatchNorm2d(4)
        self.scale = 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))

    def other_pass(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_network_ddp_syncs_only_passes_that_train_it(process_group, monkeypatch) -> None:
    calls = []
    forward = torch.nn.parallel.DistributedDataParallel.forward
    monkeypatch.setattr(
        torch.nn.parallel.DistributedDataParallel,
        "forward",
        lambda self, *a: calls.append(1) or forward(self, *a),
    )
    net = NetworkDDP(Net())
    x = torch.randn(2, 3, 8, 8)
    net(x).sum().backward()
    assert len(calls) == 1
    with torch.no_grad():
        net(x)  # validation, grids
    for p in net.parameters():  # what toggle_optimizer does in the other network's step
        p.requires_grad_(False)
    net(x.requires_grad_())
    assert len(calls) == 1
    # checkpoints keep the unwrapped keys; plain attributes pass through, other methods
    # (forward passes DDP would not see) are refused
    assert sorted(net.state_dict()) == sorted(Net().state_dict())
    assert net.scale == 2.0
    with pytest.raises(ConfigError, match=r"Net\.other_pass\(\), which trainer=ddp"):
        net.other_pass(x)
    with pytest.raises(AttributeError):
        _ = net.missing


def test_sync_batchnorm_pools_only_training_passes(process_group) -> None:
    net = TrainingSyncBatchNorm().apply(Net())
    assert isinstance(net.norm, nn.SyncBatchNorm)
    x = torch.randn(2, 3, 8, 8)
    # torch's SyncBatchNorm would start a collective here (and refuse a CPU tensor); under
    # no_grad in training mode the layer normalises with the batch's own statistics
    with torch.no_grad():
        out = net(x)
    expected = nn.functional.batch_norm(net.conv(x), None, None, training=True)
    assert torch.allclose(out, expected, atol=1e-5)
    with pytest.raises(ValueError, match="SyncBatchNorm expected input tensor to be on GPU"):
        net(x)  # a training pass synchronises (on GPUs only)
