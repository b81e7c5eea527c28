"""Robustness under load (issue #14): three checks of `python -m pix2pix_lit.train` itself.

Run from the repository root, one at a time (each prints its figures and writes them as
``<out>/<check>/result.json``)::

    python experiments/robustness/under_load.py memory --out <dir>     # RSS over 5,000 steps
    python experiments/robustness/under_load.py sweep --out <dir>      # 8 parallel CPU jobs
    python experiments/robustness/under_load.py disk-full --out <dir>  # a real full disk

``memory`` trains pix2pix on facades (``--data-dir``, default ``../shared/data``) at 64 px for
20 epochs of 250 batches, validating and checkpointing every epoch as the default run does,
and samples the resident memory of the training process and its loader workers
(``rss_probe.py``). ``sweep`` runs an 8-job multirun with ``hydra/launcher=local_parallel``
and 8 CPU slots, then checks every job's record and the sweep report. ``disk-full`` trains
into a 64 MiB tmpfs mounted in a private mount namespace (``unshare``, no root needed), fills
it, and resumes twice: the checkpoint writes at the epoch's end, then the emergency checkpoint
of a SIGTERM, hit ``ENOSPC``. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
# a small pix2pix (U-Net of 6 levels, 64 px) trained on the generated pairs of data=synthetic
TINY = ["data=synthetic", "model.num_downs=6", "model.ngf=8", "discriminator.ndf=8",
        "trainer=cpu", "trainer.enable_progress_bar=false", "logger=csv",
        "scheduler.n_epochs=1", "scheduler.n_epochs_decay=1"]  # fmt: skip
# facades at 64 px (jitter 72 -> 64) with a 16-channel U-Net of 6 levels and PatchGAN; 20
# epochs of 250 batches: 5,000 training steps, 20 validations on the 106 test pairs (facades
# has no val split) and checkpoints (last.ckpt every epoch, the best when val/L1 improves)
MEMORY_RUN = ["data.load_size=72", "data.crop_size=64", "model.num_downs=6", "model.ngf=16",
              "discriminator.ndf=16", "trainer=cpu", "trainer.enable_progress_bar=false",
              "trainer.limit_train_batches=250", "scheduler.n_epochs=10",
              "scheduler.n_epochs_decay=10", "data.num_workers=1", "logger=csv"]  # fmt: skip
STEPS = 5000
SWEEP = ["loss.lambda_l1=0,10,100,1000", "optim.lr=1e-4,2e-4"]  # 8 jobs
SWEPT = {override.split("=")[0] for override in SWEEP}
TMPFS_SIZE = "64m"
# free space left on the full disk: room for the logs and the image grid, not a checkpoint
HEADROOM = 256 * 1024


def train(
    *overrides: str,
    env: dict[str, str] | None = None,
    sigterm_when: Callable[[], bool] | None = None,
) -> dict:
    """``python -m pix2pix_lit.train`` with ``overrides``: exit status, wall time, output.
    ``sigterm_when``: send SIGTERM as soon as it answers True (polled every 0.1 s)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pix2pix_lit.train", *overrides], stdout=out, stderr=err,
            text=True, env={**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})},
        )  # fmt: skip
        while sigterm_when is not None and proc.poll() is None:
            if sigterm_when():
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.1)
        proc.wait()
        out.seek(0), err.seek(0)
        return {"returncode": proc.returncode, "wall_s": round(time.monotonic() - started, 1),
                "stdout": out.read(), "stderr": err.read()}  # fmt: skip


def require_success(result: dict, what: str) -> None:
    if result["returncode"] != 0:
        sys.exit(f"{what} failed (exit {result['returncode']}):\n{result['stderr'][-3000:]}")


def fresh_folder(path: Path) -> Path:
    if path.exists():
        sys.exit(f"{path} exists: give another --out")
    path.mkdir(parents=True)
    return path


def save(folder: Path, result: dict, summary: str) -> None:
    (folder / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / "summary.md").write_text(summary + "\n")
    print(summary)


# -- memory ------------------------------------------------------------------------------------


def memory(out: Path, data_dir: Path) -> None:
    folder = fresh_folder(out / "memory")
    samples = folder / "rss.csv"
    python_path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    result = train(
        *MEMORY_RUN, f"paths.data_dir={data_dir}", f"data.scan_cache={folder / 'scan_cache'}",
        f"hydra.run.dir={folder / 'run'}", "+callbacks.rss._target_=rss_probe.ResidentMemoryProbe",
        f"+callbacks.rss.path={samples}", env={"PYTHONPATH": python_path},
    )  # fmt: skip
    require_success(result, "the training")
    with open(samples) as f:
        rows = [{k: v if k == "event" else float(v) for k, v in row.items()}
                for row in csv.DictReader(f)]  # fmt: skip
    end = rows[-1]
    assert end["batches"] == STEPS, f"trained {end['batches']:.0f} batches, not {STEPS}"
    starts = [r for r in rows if r["event"] == "epoch_start"]
    # after warm-up: the first epoch done, with its validation and first checkpoints
    warm = starts[1]
    later = [r for r in rows if r["batches"] >= warm["batches"]]
    growth = (end["rss_mib"] - warm["rss_mib"]) / warm["rss_mib"]
    total_warm, total_end = (r["rss_mib"] + r["workers_mib"] for r in (warm, end))
    table = ["| after | batches | minutes | RSS MiB | peak RSS MiB | loader worker MiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in [*(s for s in starts if s["epoch"] < 2 or s["epoch"] % 2 == 0), end]:
        after = "training" if r is end else f"{r['epoch']:.0f} epochs"
        table.append(f"| {after} | {r['batches']:.0f} | {r['seconds'] / 60:.1f} | "
                     f"{r['rss_mib']:.1f} | {r['peak_mib']:.1f} | {r['workers_mib']:.1f} |")  # fmt: skip
    figures = {
        "steps": int(end["batches"]),
        "wall_s": result["wall_s"],
        "rss_after_warmup_mib": warm["rss_mib"],
        "rss_end_mib": end["rss_mib"],
        "growth_percent": round(100 * growth, 2),
        "rss_max_after_warmup_mib": max(r["rss_mib"] for r in later),
        "rss_min_after_warmup_mib": min(r["rss_mib"] for r in later),
        "with_workers_after_warmup_mib": round(total_warm, 1),
        "with_workers_end_mib": round(total_end, 1),
        "with_workers_growth_percent": round(100 * (total_end - total_warm) / total_warm, 2),
        "peak_mib": end["peak_mib"],
        "verdict": "pass" if growth < 0.05 else "FAIL",
    }
    save(folder, figures, "\n".join(table) + "\n\n" + json.dumps(figures, indent=2))


# -- sweep -------------------------------------------------------------------------------------


def job_interval(job: Path) -> tuple[float, float]:
    """When a job was accepted (its record written) and ended (its final metrics written)."""
    return tuple(p.stat().st_mtime for p in (job / ".hydra" / "overrides.yaml",
                                             job / "final_metrics.json"))  # fmt: skip


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def sweep(out: Path) -> None:
    folder = fresh_folder(out / "sweep")
    result = train(
        "-m", "hydra/launcher=local_parallel", "hydra.callbacks.device_slots.cpu_jobs=8", *SWEEP,
        *TINY, f"paths.data_dir={folder / 'data'}", f"paths.log_dir={folder / 'logs'}",
    )  # fmt: skip
    require_success(result, "the sweep")
    (multirun,) = (folder / "logs" / "pix2pix" / "multiruns").iterdir()
    jobs = sorted((p for p in multirun.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    rows, intervals, slots = [], [], set()
    for job in jobs:
        last = torch.load(job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        metrics = json.loads((job / "final_metrics.json").read_text())
        log = (job / "train.log").read_text()
        slots |= set(re.findall(r"slot (\d+) of 8", log))
        intervals.append(job_interval(job))
        overrides = [line.removeprefix("- ") for line in
                     (job / ".hydra" / "overrides.yaml").read_text().splitlines()
                     if line.removeprefix("- ").split("=")[0] in SWEPT]  # fmt: skip
        rows.append({
            "job": job.name, "overrides": " ".join(overrides), "last_epoch": last["epoch"],
            "best": [p.name for p in (job / "checkpoints").glob("best_*.ckpt")],
            "csv_rows": len((job / "csv" / "metrics.csv").read_text().splitlines()) - 1,
            "val_L1": round(metrics["val/L1"], 4),
        })  # fmt: skip
    report = subprocess.run([sys.executable, "-m", "pix2pix_lit.report", str(multirun)],
                            capture_output=True, text=True)  # fmt: skip
    report_rows = [line for line in (multirun / "report.md").read_text().splitlines()
                   if line.startswith("| ") and not line.startswith("| job")]  # fmt: skip
    figures = {
        "wall_s": result["wall_s"], "jobs": len(jobs), "slots_used": len(slots),
        "most_jobs_at_once": most_at_once(intervals), "report_exit": report.returncode,
        "report_rows": len(report_rows), "multirun_yaml": (multirun / "multirun.yaml").is_file(),
        "jobs_detail": rows,
    }  # fmt: skip
    ok = len(jobs) == 8 and all(r["last_epoch"] == 1 and r["best"] for r in rows)
    figures["verdict"] = "pass" if ok and len(report_rows) == 8 else "FAIL"
    table = ["| job | overrides | last.ckpt epoch | best checkpoint | metrics.csv rows | val/L1 |",
             "| --- | --- | ---: | --- | ---: | ---: |"]  # fmt: skip
    table += [f"| {r['job']} | {r['overrides']} | {r['last_epoch']} | {', '.join(r['best'])} | "
              f"{r['csv_rows']} | {r['val_L1']} |" for r in rows]  # fmt: skip
    summary = {k: v for k, v in figures.items() if k != "jobs_detail"}
    save(folder, figures, "\n".join(table) + "\n\n" + json.dumps(summary, indent=2))


# -- disk full ---------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` until a write fails with ENOSPC, then give back ``leave`` bytes."""
    filler = disk / "filler"
    with open(filler, "wb") as f:
        chunk = b"\0" * (1 << 20)
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def disk_full(out: Path) -> None:
    folder = fresh_folder(out / "disk_full")
    disk = folder / "disk"
    disk.mkdir()
    # a private mount namespace in which this user is root: a tmpfs mount that no other
    # process sees and that goes away with the command
    inside = [sys.executable, __file__, "disk-full-inside", "--out", str(folder)]
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", *inside])
    sys.exit(done.returncode)


def checkpoints_after_failure(failed: dict, checkpoints: Path, before: dict[str, str]) -> dict:
    """What a run that failed to write a checkpoint said and left."""
    return {
        "exit": failed["returncode"],
        "error_lines": [line for line in failed["stderr"].splitlines() if line.startswith("error:")],
        "traceback": "Traceback" in failed["stderr"],
        # every checkpoint of before the failure is there, byte for byte (the old best too)
        "checkpoints_unchanged": {p.name: sha256(p) for p in checkpoints.glob("*.ckpt")} == before,
        "partial_files_left": [p.name for p in checkpoints.glob(".*.part")],
        "last_ckpt_loads_epoch": torch.load(checkpoints / "last.ckpt", map_location="cpu",
                                            weights_only=False)["epoch"],
        "wall_s": failed["wall_s"],
    }  # fmt: skip


def disk_full_inside(folder: Path) -> None:
    disk = folder / "disk"
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(disk)],
                   check=True)  # fmt: skip
    run = disk / "run"
    # 32 batches an epoch, so that a SIGTERM lands mid-epoch
    data = [*TINY, "data.num_images.train=64", f"paths.data_dir={folder / 'data'}"]
    resume = [*data, f"hydra.run.dir={run}", "ckpt_path=last", "resume.allow=[trainer.max_epochs]"]
    first = train(*data, f"hydra.run.dir={run}", "trainer.max_epochs=1")
    require_success(first, "the first epoch")
    checkpoints = run / "checkpoints"
    before = {p.name: sha256(p) for p in checkpoints.glob("*.ckpt")}
    if (checkpoints / "last.ckpt").stat().st_size <= HEADROOM:
        sys.exit(f"the checkpoints are smaller than the {HEADROOM} bytes left free: they would fit")
    filler = fill(disk, HEADROOM)
    free = free_bytes(disk)
    log = run / "train.log"
    starts = log.read_text().count("Training split")
    attempts = {
        # the checkpoints written at the end of the epoch (trainer, ModelCheckpoint)
        "epoch_end": train(*resume),
        # the emergency checkpoint of a SIGTERM in the first batches (EmergencyCheckpoint)
        "sigterm": train(*resume, sigterm_when=lambda: log.read_text().count("Training split")
                         > starts + 1),
    }  # fmt: skip
    failures = {k: checkpoints_after_failure(v, checkpoints, before) for k, v in attempts.items()}
    for name, attempt in attempts.items():
        (folder / f"{name}_stderr.txt").write_text(attempt["stderr"])
    filler.unlink()
    resumed = train(*resume)
    require_success(resumed, "the resume after freeing space")
    # the same two epochs without a fault, on the real disk, for comparison
    reference = train(*data, f"hydra.run.dir={folder / 'uninterrupted'}")
    require_success(reference, "the uninterrupted run")
    weights = [torch.load(p / "checkpoints" / "last.ckpt", map_location="cpu",
                          weights_only=False)["state_dict"]
               for p in (run, folder / "uninterrupted")]  # fmt: skip
    same = all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    figures = {
        "tmpfs": TMPFS_SIZE, "checkpoint_bytes": (checkpoints / "last.ckpt").stat().st_size,
        "free_bytes_when_resumed": free, "checkpoints_before": sorted(before), **failures,
        "resumed_exit": resumed["returncode"], "resumed_equals_uninterrupted": same,
        "wall_s": {"first": first["wall_s"], "resumed": resumed["wall_s"]},
    }  # fmt: skip
    ok = same and all(
        f["exit"] == 1 and len(f["error_lines"]) == 1 and not f["traceback"]
        and f["checkpoints_unchanged"] and f["last_ckpt_loads_epoch"] == 0
        and not f["partial_files_left"] for f in failures.values()
    )  # fmt: skip
    # the SIGTERM came mid-epoch: the failed write was the emergency checkpoint
    sigterm = attempts["sigterm"]["stderr"]
    ok = ok and "Received SIGTERM" in sigterm and "last.ckpt: No space left" in sigterm
    figures["verdict"] = "pass" if ok else "FAIL"
    save(folder, figures, json.dumps(figures, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("check", choices=["memory", "sweep", "disk-full", "disk-full-inside"])
    parser.add_argument("--out", type=Path, required=True, help="where the runs and results go")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"),
                        help="the folder holding facades/ (memory)")  # fmt: skip
    args = parser.parse_args()
    out = args.out.resolve()
    if args.check == "memory":
        memory(out, args.data_dir.resolve())
    elif args.check == "sweep":
        sweep(out)
    elif args.check == "disk-full":
        disk_full(out)
    else:
        disk_full_inside(out)


if __name__ == "__main__":
    main()
