"""One bench: every row at every batch size, timed as a Lightning run and as the plain loop.

(a) ``pix2pix_lit.training.run.train`` on the composed config is the code path of
``python -m pix2pix_lit.train``, with a :class:`~pix2pix_lit.bench.timing.StepTimer` callback
added; (b) is :func:`~pix2pix_lit.bench.plain.plain_run`. Repeats are folded into one row by
their medians, and the table is written as ``<out>/<hardware>.md`` and ``.json``.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pix2pix_lit.bench.plain import plain_run
from pix2pix_lit.bench.rows import ROWS, compose_train_config
from pix2pix_lit.bench.table import markdown_table
from pix2pix_lit.bench.timing import PeakMemory, StepTimes
from pix2pix_lit.data.synthetic import make_synthetic_paired_dataset
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.hardware import hardware
from pix2pix_lit.training.run import train

#: The two ways a row is timed: the train code path and the plain loop.
SIDES = ("lightning", "plain")


def lightning_run(
    overrides: Sequence[str], workdir: Path, warmup: int, steps: int, device: torch.device
) -> tuple[StepTimes, float | None]:
    """(a): ``pix2pix_lit.training.run.train`` on the composed config, timed by :class:`StepTimer`."""
    marks = workdir / "steps.json"
    timer = [
        "++callbacks.step_timer._target_=pix2pix_lit.bench.timing.StepTimer",
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


def _data_overrides(data_root: Path | None, workdir: Path, size: int, count: int) -> list[str]:
    if data_root is None:
        # No facades: a generated dataset of the benchmark's image size.
        data_root = make_synthetic_paired_dataset(
            workdir / "synthetic", {"train": count, "test": 2}, size=size
        )
        return [f"data.root={data_root}", "data.direction=AtoB"]
    return [f"data.root={data_root}"]


def _median_summary(
    runs: list[tuple[StepTimes, float | None]], warmup: int, batch: int
) -> dict | None:
    """One row's numbers over its repeats: median step time and wait, fastest step, largest
    peak memory (None for a side that was not run)."""
    if not runs:
        return None
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
    sides: Sequence[str] = SIDES,
) -> list[dict[str, Any]]:
    """Measure every row at every batch size; write ``<out>/<name>.md`` and ``.json`` (name:
    the hardware, e.g. ``cpu-2core``) after each run, and return the results.

    ``sides``: ``lightning`` (the train code path) and/or ``plain`` (the plain loop).
    """
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
    runs: dict[tuple[str, int], dict[str, list]] = {}

    def results() -> list[dict[str, Any]]:
        return [
            {"row": row, "batch": batch}
            | {side: _median_summary(got[side], warmup, batch) for side in SIDES}
            for (row, batch), got in runs.items()
        ]

    settings = {
        "size": size,
        "warmup": warmup,
        "steps": steps,
        "repeats": repeats,
        "data_root": os.path.relpath(data_root) if data_root else "generated",
        "overrides": list(overrides),
    }
    with tempfile.TemporaryDirectory(prefix="pix2pix-bench-") as tmp:
        work = Path(tmp)
        data = _data_overrides(data_root, work, size, (warmup + steps + 1) * max(batches))
        for repeat in range(repeats):
            for row in rows:
                for batch in batches:
                    # Later overrides win, a row's data=... over the default data=facades.
                    config = [*base, *data, f"data.batch_size={batch}", *ROWS[row], *overrides]
                    workdir = work / f"{repeat}-{re.sub(r'[^a-z0-9]+', '-', row)}-{batch}"
                    workdir.mkdir()
                    got = runs.setdefault((row, batch), {side: [] for side in SIDES})
                    if "lightning" in sides:
                        got["lightning"].append(
                            lightning_run(config, workdir, warmup, steps, device)
                        )
                    if "plain" in sides:
                        got["plain"].append(plain_run(config, warmup, steps, device))
                    # after every run: a bench cut short still leaves its table so far
                    _write_report(results(), settings, device, load_before, out, name)
    return results()


def _write_report(
    results: list[dict[str, Any]],
    settings: dict[str, Any],
    device: torch.device,
    load_before: float,
    out: Path,
    name: str | None,
) -> None:
    info = hardware()
    size, steps, warmup, repeats = (settings[k] for k in ("size", "steps", "warmup", "repeats"))
    report = {
        "hardware": info,
        "settings": {
            **settings,
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
