"""The whole-step CUDA graph: a clean eager fallback without a GPU, the eager step's losses
with one."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import ONE_BATCH, compose_run, run_tiny
from pix2pix_lit.config import validate_config
from pix2pix_lit.data import make_synthetic_paired_dataset
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.losses import Pix2PixObjective
from pix2pix_lit.networks import PatchDiscriminator, UnetGenerator
from pix2pix_lit.tasks.graphed_step import GraphedStep, _TrainingState
from pix2pix_lit.tasks.pix2pix import update_step

NO_GPU = "needs a CUDA GPU (torch.cuda.is_available() is false on this machine)"
LR = 2e-4
OFF = "CUDA graph off: "
LOSSES_AND_METRICS = [
    *(f"train/{k}_epoch" for k in ("D_real", "D_fake", "G_L1", "G_GAN")),
    *(f"val/{k}" for k in ("L1", "PSNR", "SSIM")),
]


def _nets(device: str, dropout: bool = True) -> tuple[nn.Module, nn.Module, tuple]:
    torch.manual_seed(0)
    generator = UnetGenerator(num_downs=5, ngf=8, use_dropout=dropout).to(device)
    discriminator = PatchDiscriminator(ndf=8).to(device)
    optimizers = tuple(
        torch.optim.Adam(net.parameters(), lr=LR, betas=(0.5, 0.999))
        for net in (generator, discriminator)
    )
    return generator, discriminator, optimizers


def _step(generator: nn.Module, discriminator: nn.Module, optimizers: tuple):
    objective = Pix2PixObjective().to(next(generator.parameters()).device)
    return partial(update_step, generator, discriminator, objective, optimizers)


def _graph_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(OFF)]


def test_without_cuda_the_graphed_step_warns_once_and_runs_the_eager_step(
    caplog: pytest.LogCaptureFixture,
) -> None:
    torch.manual_seed(1)
    batches = [torch.randn(2, 3, 32, 32) for _ in range(4)]
    g, d, opts = _nets("cpu")
    graphed = GraphedStep(_step(g, d, opts), (g, d), opts)
    eager = _nets("cpu")
    with caplog.at_level(logging.WARNING):
        for seed, (x, y) in enumerate(zip(batches[::2], batches[1::2], strict=True)):
            torch.manual_seed(seed)  # the same dropout masks on both sides
            got = graphed(x, y)
            torch.manual_seed(seed)
            expected = _step(*eager)(x, y)
            assert got.keys() == expected.keys() == {"D_real", "D_fake", "G_L1", "G_GAN"}
            assert all(torch.equal(got[k], expected[k]) for k in got)
    assert _graph_warnings(caplog) == [f"{OFF}no CUDA device; the training step runs eagerly"]
    assert graphed.disabled == "no CUDA device" and not graphed.captured
    for mine, theirs in zip((g, d), eager[:2], strict=True):
        assert all(
            torch.equal(a, b) for a, b in zip(mine.parameters(), theirs.parameters(), strict=True)
        )


def _values(*modules: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for m in modules for t in (*m.parameters(), *m.buffers())]


def test_the_warm_up_steps_are_undone_in_place() -> None:
    g, d, opts = _nets("cpu")
    x, y = torch.randn(2, 2, 3, 32, 32)
    fresh = _values(g, d)
    saved = _TrainingState((g, d), opts)
    _step(g, d, opts)(x, y)  # moves weights and batch-norm statistics, creates Adam's state
    saved.restore()
    assert all(torch.equal(a, b) for a, b in zip(_values(g, d), fresh, strict=True))
    # the state the warm-up created is a fresh optimizer's: zeros, step 0
    states = [v for o in opts for s in o.state.values() for v in s.values()]
    assert len(states) == 3 * sum(len(o.param_groups[0]["params"]) for o in opts)
    assert all(not v.any() for v in states)
    # state that existed before the warm-up comes back as it was
    _step(g, d, opts)(x, y)
    stepped = _values(g, d), [v.clone() for v in states]
    saved = _TrainingState((g, d), opts)
    _step(g, d, opts)(x, y)
    saved.restore()
    assert all(torch.equal(a, b) for a, b in zip(_values(g, d), stepped[0], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(states, stepped[1], strict=True))


def _trained(tmp_path: Path, name: str, *overrides: str) -> tuple[dict[str, float], int]:
    metrics = run_tiny(
        tmp_path, *ONE_BATCH, "trainer.limit_train_batches=2", "logger=none", *overrides, out=name
    )
    checkpoint = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)
    return metrics, checkpoint["global_step"]


def test_a_run_asking_for_a_graph_on_a_cpu_trains_as_the_eager_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    no_check = "task.nonfinite_patience=0"
    eager = _trained(tmp_path, "eager", no_check)
    with caplog.at_level(logging.WARNING):
        graphed = _trained(tmp_path, "graphed", no_check, "task.cuda_graph=true")
        assert _graph_warnings(caplog) == [f"{OFF}no CUDA device; the training step runs eagerly"]
        caplog.clear()
        _trained(tmp_path, "checked", "task.cuda_graph=true")  # the non-finite check syncs
        (warning,) = _graph_warnings(caplog)
    assert "task.nonfinite_patience=10" in warning and "set task.nonfinite_patience=0" in warning
    # two batches, two optimizer steps each: Lightning counted the steps the graph path made
    assert graphed[1] == eager[1] == 4
    for key in LOSSES_AND_METRICS:  # timings (main's train/img_per_s) differ, of course
        assert graphed[0][key] == pytest.approx(eager[0][key], rel=1e-6), key


class _EagerReplay(GraphedStep):
    """Stands in for a captured graph on the CPU: each "replay" runs the step eagerly, so the
    task's replay path (which steps the optimizers underneath Lightning's) runs here."""

    def fits(self, *inputs: torch.Tensor) -> bool:
        return True

    def __call__(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.step(*inputs)


def test_replayed_steps_train_and_count_as_the_eager_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_check = "task.nonfinite_patience=0"
    eager = _trained(tmp_path, "eager", no_check)
    monkeypatch.setattr("pix2pix_lit.tasks.pix2pix.GraphedStep", _EagerReplay)
    replayed = _trained(tmp_path, "replayed", no_check, "task.cuda_graph=true")
    # two batches, two optimizer steps each, counted by Lightning although it made none
    assert replayed[1] == eager[1] == 4
    for key in LOSSES_AND_METRICS:
        assert replayed[0][key] == pytest.approx(eager[0][key], rel=1e-6), key


def test_a_graph_for_a_task_without_one_is_refused_by_name(tmp_path: Path) -> None:
    cfg = compose_run(["task=cyclegan", "perf=graph"], tmp_path)
    with pytest.raises(
        ConfigError, match=r"task.cuda_graph=true \(perf=graph\) captures the pix2pix"
    ):
        validate_config(cfg)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_the_graphed_step_gives_the_eager_losses_on_cuda() -> None:
    torch.manual_seed(1)
    shapes = [(2, 3, 64, 64)] * 4 + [(1, 3, 64, 64)] + [(2, 3, 64, 64)] * 2
    batches = [(torch.randn(s, device="cuda"), torch.randn(s, device="cuda")) for s in shapes]
    # no dropout: the graph draws its masks at other generator offsets than eager steps
    g, d, opts = _nets("cuda", dropout=False)
    graphed = GraphedStep(_step(g, d, opts), (g, d), opts)
    eager = _nets("cuda", dropout=False)
    for index, (x, y) in enumerate(batches):
        if index == 3:  # a scheduler's new rate, set as older torch versions do (a float)
            for optimizer in (*opts, *eager[2]):
                for group in optimizer.param_groups:
                    group["lr"] = LR / 2
        got, expected = graphed(x, y), _step(*eager)(x, y)
        for key, value in expected.items():
            assert got[key].item() == pytest.approx(value.item(), rel=1e-3, abs=1e-5), (index, key)
    assert graphed.captured and graphed.disabled is None
    for mine, theirs in zip((g, d), eager[:2], strict=True):
        for a, b in zip(mine.parameters(), theirs.parameters(), strict=True):
            assert (a - b).abs().max() <= 2.5 * LR  # a near-zero gradient may step either way


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_perf_graph_trains_on_cuda_without_falling_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # perf=graph decodes into memory: a pix2pix-layout folder, not the synthetic data module
    root = make_synthetic_paired_dataset(tmp_path / "pairs", {"train": 4, "test": 2}, size=64)
    data = ["data=folder", f"data.root={root}", "data.load_size=72", "data.crop_size=64"]
    with caplog.at_level(logging.WARNING):
        metrics, steps = _trained(tmp_path, "graph", "trainer=gpu", "perf=graph", *data)
    assert _graph_warnings(caplog) == []
    assert steps == 4 and torch.isfinite(torch.tensor(metrics["train/G_L1_epoch"]))
