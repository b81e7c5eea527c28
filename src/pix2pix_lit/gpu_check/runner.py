"""Run the stages one after another, each in its own process group with its own time limit
inside the overall budget, and rewrite the report after each."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from fnmatch import fnmatch

from pix2pix_lit.gpu_check.plan import SRC, Settings, Stage
from pix2pix_lit.gpu_check.report import Report
from pix2pix_lit.gpu_check.results import read_result, row, stage_rows

#: A stage is not started with less time than this left in the budget.
MIN_STAGE_S = 10.0
#: Time a stopped stage gets between SIGTERM and SIGKILL.
GRACE_S = 5.0


def stage_env(settings: Settings) -> dict[str, str]:
    """The stages' environment: this source tree first on the path."""
    path = [str(SRC), os.environ.get("PYTHONPATH", "")]
    return os.environ | {
        "PYTHONPATH": os.pathsep.join(p for p in path if p),
        "PYTHONUNBUFFERED": "1",
        "WANDB_MODE": "offline",
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "HYDRA_FULL_ERROR": "1",
    }


def run_command(argv: Sequence[str], timeout_s: float, env: dict[str, str]) -> tuple[str, str]:
    """Run ``argv``; return its status (ok, failed, timed out) and its output. On time-out
    the whole process group goes (data-loader workers and compile workers too)."""
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=env,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
        return ("ok" if process.returncode == 0 else "failed"), output
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        return "timed out", output


def run_plan(
    stages: Sequence[Stage], settings: Settings, report: Report, only: Sequence[str] = ()
) -> None:
    """Run ``stages`` (those matching a pattern of ``only``, when given) within the budget."""
    deadline = time.monotonic() + report.budget_s
    env = stage_env(settings)
    for stage in stages:
        if only and not any(fnmatch(stage.name, pattern) for pattern in only):
            continue
        left = deadline - time.monotonic()
        if left < MIN_STAGE_S:
            note = f"not started: {max(left, 0):.0f} s left of the {report.budget_s:.0f} s budget"
            report.add(
                stage.name,
                [row(stage, what="(stage)", status="skipped", notes=note)],
                "skipped",
                0,
                "",
            )
            report.write()
            continue
        timeout_s = min(stage.timeout_s, left)
        print(f"gpu-check: {stage.name} (at most {timeout_s:.0f} s)", flush=True)
        launched, start = time.time(), time.monotonic()
        status, output = run_command(stage.argv, timeout_s, env)
        seconds = time.monotonic() - start
        # committed reports carry no absolute paths
        output = output.replace(str(settings.work), "<work>").replace(str(SRC.parent), ".")
        rows = stage_rows(stage, status, output, seconds, launched)
        if stage.kind == "probe":
            report.info = read_result(stage.result).get("info", {})
        report.add(stage.name, rows, status, seconds, output)
        report.write()
        print(f"gpu-check: {stage.name}: {status} after {seconds:.0f} s", flush=True)
    report.write(finished=True)
