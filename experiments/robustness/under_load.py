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
it, and lets the next checkpoint write hit ``ENOSPC``. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
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


def train(*overrides: str, env: dict[str, str] | None = None) -> dict:
    """``python -m pix2pix_lit.train`` with ``overrides``: exit status, wall time, output."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pix2pix_lit.train", *overrides],
        capture_output=True, text=True, env={**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})},
    )  # fmt: skip
    return {"returncode": done.returncode, "wall_s": round(time.monotonic() - started, 1),
            "stdout": done.stdout, "stderr": done.stderr}  # fmt: skip


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


def disk_full_inside(folder: Path) -> None:
    disk = folder / "disk"
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(disk)],
                   check=True)  # fmt: skip
    run = disk / "run"
    common = [*TINY, f"paths.data_dir={folder / 'data'}", f"hydra.run.dir={run}"]
    resume = [*common, "ckpt_path=last", "resume.allow=[trainer.max_epochs]"]
    first = train(*common, "trainer.max_epochs=1")
    require_success(first, "the first epoch")
    last = run / "checkpoints" / "last.ckpt"
    before = {p.name: sha256(p) for p in last.parent.glob("*.ckpt")}
    if last.stat().st_size <= HEADROOM:
        sys.exit(f"{last} is smaller than the {HEADROOM} bytes left free: it would fit")
    filler = fill(disk, HEADROOM)
    free_before_resume = free_bytes(disk)
    failed = train(*resume)
    errors = [line for line in failed["stderr"].splitlines() if line.startswith("error:")]
    leftovers = [p.name for p in last.parent.glob(".*.part")]
    # every checkpoint of before the failure is there, byte for byte (the old best too)
    intact = {p.name: sha256(p) for p in last.parent.glob("*.ckpt")} == before
    epoch = torch.load(last, map_location="cpu", weights_only=False)["epoch"]
    filler.unlink()
    resumed = train(*resume)
    require_success(resumed, "the resume after freeing space")
    # the same two epochs without a fault, on the real disk, for comparison
    reference = train(*TINY, f"paths.data_dir={folder / 'data'}",
                      f"hydra.run.dir={folder / 'uninterrupted'}")  # fmt: skip
    require_success(reference, "the uninterrupted run")
    weights = [torch.load(p / "checkpoints" / "last.ckpt", map_location="cpu",
                          weights_only=False)["state_dict"]
               for p in (run, folder / "uninterrupted")]  # fmt: skip
    same = all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    (folder / "failed_stderr.txt").write_text(failed["stderr"])
    (folder / "failed_stdout.txt").write_text(failed["stdout"])
    figures = {
        "tmpfs": TMPFS_SIZE, "checkpoint_bytes": last.stat().st_size,
        "free_bytes_when_resumed": free_before_resume, "failed_exit": failed["returncode"],
        "error_lines": errors, "traceback": "Traceback" in failed["stderr"],
        "checkpoints_before": sorted(before), "checkpoints_unchanged": intact,
        "last_ckpt_loads_epoch": epoch, "partial_files_left": leftovers, "resumed_exit": resumed["returncode"],
        "resumed_equals_uninterrupted": same,
        "wall_s": {"first": first["wall_s"], "failed": failed["wall_s"],
                   "resumed": resumed["wall_s"]},
    }  # fmt: skip
    ok = (failed["returncode"] == 1 and len(errors) == 1 and not figures["traceback"]
          and intact and epoch == 0 and not leftovers and same)  # fmt: skip
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
