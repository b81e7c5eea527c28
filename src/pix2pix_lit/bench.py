"""Training throughput: the Lightning run of ``pix2pix_lit.train`` against a plain PyTorch loop.

``python -m pix2pix_lit.bench [--batch 1 4] [--size 128] [--rows fp32 bf16 ...] [OVERRIDES]``

For each row (a speed switch, as Hydra overrides of the train config) and batch size it times

(a) ``pix2pix_lit.run.train`` on the composed config: the code path of
    ``python -m pix2pix_lit.train``, with a :class:`StepTimer` callback added;
(b) a plain PyTorch loop over the same data module, networks, objective and optimizers (built
    from the same config and seed), doing the same step (D step, then G step with D frozen)
    under the same switches (autocast, channels_last, fused Adam, compile).

Only steady-state steps count: the first ``--warmup`` steps (compilation, allocator warm-up)
and the first step of every epoch (loader start) are left out, and validation is off. On a
CPU a step's time is the median interval between the ends of consecutive steps (robust to
other processes on a shared machine); on a GPU, where steps are asynchronous, the mean over
the window between two synchronisations. Peak memory: ``torch.cuda.max_memory_allocated``
on a GPU; on a CPU the growth of the process's peak resident set (``VmHWM``, reset through
``/proc/self/clear_refs`` before each run) over its resident set at the start of the run.

Writes one table as ``<out>/<hardware>.md`` and ``<out>/<hardware>.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import math
import os
import platform
import re
import statistics
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.fabric.utilities.apply_func import move_data_to_device
from omegaconf import DictConfig, open_dict
from torch import Tensor, nn

from pix2pix_lit.callbacks.performance import PerformanceCallback
from pix2pix_lit.config import config_dir
from pix2pix_lit.data.synthetic import make_synthetic_paired_dataset
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.losses import Pix2PixObjective
from pix2pix_lit.run import train


def _performance(**switches: object) -> list[str]:
    # "++" adds the key or overrides it, whichever the composed config needs.
    target = "++callbacks.performance._target_=pix2pix_lit.callbacks.PerformanceCallback"
    return [target, *(f"++callbacks.performance.{k}={v}" for k, v in switches.items())]


_FUSED = ["++optim.generator.fused=true", "++optim.discriminator.fused=true"]

#: Rows of the table: one speed switch at a time on the plain fp32 path, then the presets.
ROWS: dict[str, list[str]] = {
    "fp32": [],
    "bf16": ["trainer.precision=bf16-mixed"],
    "channels_last": _performance(channels_last=True),
    "fused": _FUSED,
    "compile": _performance(compile=True),
    "bf16+channels_last": ["trainer.precision=bf16-mixed", *_performance(channels_last=True)],
    "perf=fast": ["perf=fast"],
    "perf=fast workers=0": ["perf=fast", "data.num_workers=0"],
    "perf=fast workers=2": ["perf=fast", "data.num_workers=2"],
    "perf=fast in_memory": ["perf=fast", "data=facades_in_memory"],
    "perf=compile": ["perf=compile"],
}
#: Rows run by default: everything but compile on a CPU (minutes of compilation per run).
CPU_ROWS = [name for name in ROWS if "compile" not in name]

_AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {
    "32-true": None,
    "32": None,
    "bf16-mixed": torch.bfloat16,
}


# -- timing and memory -----------------------------------------------------------------------
@dataclass
class StepTimes:
    """When each training step's batch was ready and when the step was done (perf_counter),
    and the process's CPU time at each step's end (``process_time``: other processes on a
    shared machine slow the wall clock far more than they change the work a step costs)."""

    ready: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    cpu_done: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    epoch_starts: list[int] = field(default_factory=list)
    synced: list[int] = field(default_factory=list)

    def new_epoch(self) -> None:
        self.epoch_starts.append(len(self.done))

    def batch_ready(self, size: int) -> None:
        self.ready.append(perf_counter())
        self.sizes.append(size)

    def batch_done(self, device: torch.device, warmup: int, total: int) -> None:
        """Mark a step's end; on a GPU synchronise only around the measured window."""
        step = len(self.done) + 1
        if device.type == "cuda" and step in (warmup, total):
            torch.cuda.synchronize(device)
            self.synced.append(step - 1)
        self.done.append(perf_counter())
        self.cpu_done.append(process_time())

    def summary(self, warmup: int, batch_size: int) -> dict[str, float | int | None]:
        """Median and fastest ms/step, img/s (from the median), CPU ms/step and the median wait
        for data between steps (fastest, CPU time and wait: not measured on a GPU)."""
        steady = [
            i
            for i in range(max(warmup, 1), len(self.done))
            if i not in self.epoch_starts and self.sizes[i] == batch_size
        ]
        if not steady:
            raise ConfigError(
                f"no steady-state step to time ({len(self.done)} steps, warmup {warmup}); "
                "raise --steps"
            )
        if len(self.synced) == 2:
            first, last = self.synced
            seconds = (self.done[last] - self.done[first]) / (last - first)
            best = wait = cpu = None
        else:
            intervals = [self.done[i] - self.done[i - 1] for i in steady]
            seconds = statistics.median(intervals)
            best = min(intervals) * 1e3
            wait = statistics.median(self.ready[i] - self.done[i - 1] for i in steady) * 1e3
            cpu = statistics.median(self.cpu_done[i] - self.cpu_done[i - 1] for i in steady) * 1e3
        return {
            "ms_per_step": seconds * 1e3,
            "best_ms_per_step": best,
            "cpu_ms_per_step": cpu,
            "images_per_s": batch_size / seconds,
            "data_wait_ms": wait,
            "steps": len(steady),
        }


class StepTimer(L.Callback):
    """Records :class:`StepTimes` of a Lightning run, stops it after ``warmup + steps`` steps
    and writes the marks as JSON to ``path`` (the bench reads them back)."""

    def __init__(self, path: str, warmup: int, steps: int) -> None:
        self.path = Path(path)
        self.warmup = warmup
        self.total = warmup + steps
        self.times = StepTimes()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.times.new_epoch()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.times.batch_ready(len(batch["A"]))

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.times.batch_done(pl_module.device, self.warmup, self.total)
        if len(self.times.done) >= self.total:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.path.write_text(json.dumps(asdict(self.times)))


def _proc_status_kb(field_name: str) -> int:
    match = re.search(rf"^{field_name}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    if match is None:
        raise OSError(f"no {field_name} in /proc/self/status")
    return int(match.group(1))


class PeakMemory:
    """Peak memory of one run in MiB: CUDA max allocated, or peak RSS growth on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._start_kb: int | None = None

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            # Hand freed heap back first, so memory cached from the previous run does not
            # hide this run's growth; then reset the high-water mark to the current RSS.
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")
            self._start_kb = _proc_status_kb("VmRSS")
        except OSError:
            self._start_kb = None

    def peak_mib(self) -> float | None:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self._start_kb is None:
            return None
        return (_proc_status_kb("VmHWM") - self._start_kb) / 1024


# -- the two ways of training -------------------------------------------------------------
def compose_train_config(overrides: Sequence[str]) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, as ``python -m pix2pix_lit.train`` composes it."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    # The config reads Hydra's runtime values (${hydra:...}) as under the CLI, which also
    # hands the task function the config without its hydra node.
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def lightning_run(
    overrides: Sequence[str], workdir: Path, warmup: int, steps: int, device: torch.device
) -> tuple[StepTimes, float | None]:
    """(a): ``pix2pix_lit.run.train`` on the composed config, timed by :class:`StepTimer`."""
    marks = workdir / "steps.json"
    timer = [
        "++callbacks.step_timer._target_=pix2pix_lit.bench.StepTimer",
        f"++callbacks.step_timer.path={marks}",
        f"++callbacks.step_timer.warmup={warmup}",
        f"++callbacks.step_timer.steps={steps}",
    ]
    cfg = compose_train_config([*overrides, *timer, f"paths.output_dir={workdir}"])
    memory = PeakMemory(device)
    memory.start()
    train(cfg)
    peak = memory.peak_mib()
    return StepTimes(**json.loads(marks.read_text())), peak


def autocast_for(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """The autocast context Lightning's precision plugin puts around a training step."""
    if precision not in _AUTOCAST_DTYPES:
        raise ConfigError(
            f"trainer.precision={precision} is not supported by the bench's plain loop; "
            f"use one of {', '.join(_AUTOCAST_DTYPES)}"
        )
    dtype = _AUTOCAST_DTYPES[precision]
    if dtype is None:
        return nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def plain_step(
    generator: nn.Module,
    discriminator: nn.Module,
    objective: Pix2PixObjective,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    real_a: Tensor,
    real_b: Tensor,
    autocast: Callable[[], AbstractContextManager],
) -> None:
    """One pix2pix step without Lightning: D on (x, y) and (x, G(x)), then G with D frozen."""
    opt_g, opt_d = optimizers
    with autocast():
        fake_b = generator(real_a)
        loss_d, _ = objective.discriminator_loss(discriminator, real_a, real_b, fake_b)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    # As toggle_optimizer does: the G step computes no gradients for D's weights.
    discriminator.requires_grad_(False)
    with autocast():
        loss_g, _ = objective.generator_loss(discriminator, real_a, real_b, fake_b)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    discriminator.requires_grad_(True)


def plain_run(
    overrides: Sequence[str], warmup: int, steps: int, device: torch.device
) -> tuple[StepTimes, float | None]:
    """(b): the same data, networks, objective, optimizers and switches in a plain loop."""
    cfg = compose_train_config(overrides)
    memory = PeakMemory(device)
    memory.start()
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    task = instantiate(cfg.task).to(device)
    generator, discriminator = task.generator, task.discriminator
    perf: PerformanceCallback | None = None
    if cfg.callbacks and cfg.callbacks.get("performance"):
        perf = instantiate(cfg.callbacks.performance)
        perf.prepare([generator, discriminator])
    optimizers = (
        task.optimizer_g(generator.parameters()),
        task.optimizer_d(discriminator.parameters()),
    )
    autocast = autocast_for(str(cfg.trainer.precision), device)
    times, total = StepTimes(), warmup + steps
    loader = datamodule.train_dataloader()
    while len(times.done) < total:
        times.new_epoch()
        for batch in loader:
            batch = datamodule.on_after_batch_transfer(move_data_to_device(batch, device), 0)
            if perf is not None:
                perf.convert_batch(batch)
            times.batch_ready(len(batch["A"]))
            plain_step(
                generator,
                discriminator,
                task.objective,
                optimizers,
                batch["A"],
                batch["B"],
                autocast,
            )
            times.batch_done(device, warmup, total)
            if len(times.done) >= total:
                break
    return times, memory.peak_mib()


# -- the table ------------------------------------------------------------------------------
def hardware() -> dict[str, Any]:
    """What ran the bench: CPU model, threads, GPU, library versions."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        cpu = match.group(1).strip() if match else cpu
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    info["slug"] = (
        re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-")
        if info["gpu"]
        else f"cpu-{info['cpu_count']}core"
    )
    return info


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The results as one markdown table; speed-ups relative to the fp32 row at the same batch."""
    fp32 = {r["batch"]: r["lightning"] for r in results if r["row"] == "fp32"}
    lines = [
        "| row | batch | Lightning img/s | Lightning ms/step | plain ms/step "
        "| Lightning ÷ plain | vs fp32 | Lightning best ms/step | plain best ms/step "
        "| Lightning ÷ plain (best) | vs fp32 (best) | loader wait ms "
        "| peak MiB Lightning | peak MiB plain |",
        "|" + "---|" * 14,
    ]
    for r in results:
        a, b, base = r["lightning"], r["plain"], fp32.get(r["batch"], {})
        cells = [
            r["row"],
            str(r["batch"]),
            f"{a['images_per_s']:.2f}",
            f"{a['ms_per_step']:.0f}",
            f"{b['ms_per_step']:.0f}",
            _fmt(_ratio(a["ms_per_step"], b["ms_per_step"]), 2),
            _fmt(_ratio(base.get("ms_per_step"), a["ms_per_step"]), 2),
            _fmt(a["best_ms_per_step"], 0),
            _fmt(b["best_ms_per_step"], 0),
            _fmt(_ratio(a["best_ms_per_step"], b["best_ms_per_step"]), 2),
            _fmt(_ratio(base.get("best_ms_per_step"), a["best_ms_per_step"]), 2),
            _fmt(a["data_wait_ms"]),
            _fmt(a["peak_mib"], 0),
            _fmt(b["peak_mib"], 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _data_overrides(data_root: Path | None, workdir: Path, size: int, count: int) -> list[str]:
    if data_root is None:
        # No facades: a generated dataset of the benchmark's image size.
        data_root = make_synthetic_paired_dataset(
            workdir / "synthetic", {"train": count, "test": 2}, size=size
        )
        return [f"data.root={data_root}", "data.direction=AtoB"]
    return [f"data.root={data_root}"]


def _median_summary(runs: list[tuple[StepTimes, float | None]], warmup: int, batch: int) -> dict:
    """One row's numbers over its repeats: median step time and wait, fastest step, largest
    peak memory."""
    summaries = [times.summary(warmup, batch) for times, _ in runs]
    ms = statistics.median(s["ms_per_step"] for s in summaries)
    bests = [s["best_ms_per_step"] for s in summaries if s["best_ms_per_step"] is not None]
    waits = [s["data_wait_ms"] for s in summaries if s["data_wait_ms"] is not None]
    cpu = [s["cpu_ms_per_step"] for s in summaries if s["cpu_ms_per_step"] is not None]
    peaks = [peak for _, peak in runs if peak is not None]
    return {
        "ms_per_step": ms,
        "images_per_s": batch * 1e3 / ms,
        "best_ms_per_step": min(bests) if bests else None,
        "data_wait_ms": statistics.median(waits) if waits else None,
        "cpu_ms_per_step": statistics.median(cpu) if cpu else None,
        "peak_mib": max(peaks) if peaks else None,
        "steps": sum(s["steps"] for s in summaries),
        "repeats_ms_per_step": [s["ms_per_step"] for s in summaries],
    }


def run_bench(
    rows: Sequence[str],
    batches: Sequence[int],
    size: int,
    warmup: int,
    steps: int,
    repeats: int,
    data_root: Path | None,
    overrides: Sequence[str],
    out: Path,
    name: str | None = None,
) -> list[dict[str, Any]]:
    """Measure every row at every batch size; write ``<out>/<name>.md`` and ``.json`` (name:
    the hardware, e.g. ``cpu-2core``) and return the results."""
    unknown = [row for row in rows if row not in ROWS]
    if unknown:
        raise ConfigError(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # Other processes on the machine slow every row: the load is reported with the table.
    load_before = os.getloadavg()[0]
    model = {128: ["model=unet128"], 256: ["model=unet256"]}.get(size, [])
    base = [
        "data=facades",
        *model,
        f"data.crop_size={size}",
        # the paper's jitter, 286 for 256, scaled to the image size
        f"data.load_size={math.ceil(size * 286 / 256)}",
        "trainer=gpu" if device.type == "cuda" else "trainer=cpu",
        "trainer.max_epochs=1000",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "++trainer.enable_model_summary=false",
        # checkpoints would add their serialisation to the peak memory (and write GBs)
        "++trainer.enable_checkpointing=false",
        "callbacks=none",
    ]
    results = []
    with tempfile.TemporaryDirectory(prefix="pix2pix-bench-") as tmp:
        work = Path(tmp)
        data = _data_overrides(data_root, work, size, (warmup + steps + 1) * max(batches))
        runs: dict[tuple[str, int], dict[str, list]] = {}
        for repeat in range(repeats):
            for row in rows:
                for batch in batches:
                    # Later overrides win, a row's data=... over the default data=facades.
                    config = [*base, *data, f"data.batch_size={batch}", *ROWS[row], *overrides]
                    workdir = work / f"{repeat}-{re.sub(r'[^a-z0-9]+', '-', row)}-{batch}"
                    workdir.mkdir()
                    got = runs.setdefault((row, batch), {"lightning": [], "plain": []})
                    got["lightning"].append(lightning_run(config, workdir, warmup, steps, device))
                    got["plain"].append(plain_run(config, warmup, steps, device))
        for (row, batch), got in runs.items():
            results.append(
                {
                    "row": row,
                    "batch": batch,
                    "lightning": _median_summary(got["lightning"], warmup, batch),
                    "plain": _median_summary(got["plain"], warmup, batch),
                }
            )
    info = hardware()
    report = {
        "hardware": info,
        "settings": {
            "size": size,
            "warmup": warmup,
            "steps": steps,
            "repeats": repeats,
            "data_root": str(data_root) if data_root else "generated",
            "overrides": list(overrides),
            "step_time": "median interval (CPU)" if device.type == "cpu" else "window mean (GPU)",
            "peak_memory": "VmHWM growth (CPU)" if device.type == "cpu" else "CUDA max allocated",
            "load_average_1min": [load_before, os.getloadavg()[0]],
        },
        "results": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    name = name or info["slug"]
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    header = (
        f"{info['cpu']}, {info['torch_threads']} torch threads"
        + (f", {info['gpu']}" if info["gpu"] else "")
        + f"; torch {info['torch']}, lightning {info['lightning']}; {size}×{size}, "
        f"{steps} timed steps after {warmup} warm-up, {repeats} repeat(s); 1-min load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n\n"
    )
    (out / f"{name}.md").write_text(header + markdown_table(results))
    return results


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    gpu = torch.cuda.is_available()
    parser = argparse.ArgumentParser(prog="python -m pix2pix_lit.bench", description=__doc__)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 128] if gpu else [1, 4])
    parser.add_argument("--size", type=int, default=256 if gpu else 128, help="crop size")
    parser.add_argument("--rows", nargs="+", default=list(ROWS) if gpu else CPU_ROWS)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20 if gpu else 8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="a pix2pix-layout dataset (facades); default: generated pairs",
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/throughput"))
    parser.add_argument("--name", default=None, help="results file name (default: hardware)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the train config")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the bench from the command line and print its table."""
    args = _parse_args(argv)
    # One table on stdout: Lightning's per-run banners would bury it.
    for name in ("lightning.pytorch", "lightning.fabric", "pix2pix_lit"):
        logging.getLogger(name).setLevel(logging.WARNING)
    results = run_bench(
        args.rows,
        args.batch,
        args.size,
        args.warmup,
        args.steps,
        args.repeats,
        args.data_root,
        args.overrides,
        args.out,
        args.name,
    )
    print(markdown_table(results), end="")


if __name__ == "__main__":
    main()
