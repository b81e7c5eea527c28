"""``make gpu-check``: stages are time-boxed within a budget, results become one table, and the
dry run goes through every stage on a CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pix2pix_lit.gpu_check import runner
from pix2pix_lit.gpu_check.plan import SRC, Settings, Stage
from pix2pix_lit.gpu_check.report import Report
from pix2pix_lit.gpu_check.results import stage_rows


def _python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def _report(tmp_path: Path, budget_s: float) -> Report:
    return Report(out=tmp_path / "out", log_dir=tmp_path, dry_run=True, budget_s=budget_s)


def _run(tmp_path: Path, stages: list[Stage], budget_s: float) -> tuple[Report, float]:
    settings = Settings(work=tmp_path, data_root=None, dry_run=True)
    report = _report(tmp_path, budget_s)
    start = time.monotonic()
    runner.run_plan(stages, settings, report)
    return report, time.monotonic() - start


SLEEPER = _python("import time; print('started', flush=True); time.sleep(60)")


def test_a_stage_past_its_limit_is_stopped_and_the_next_ones_still_run(tmp_path: Path) -> None:
    stages = [
        Stage("sleeps", "plain", SLEEPER, timeout_s=5),
        Stage("fails", "plain", _python("raise SystemExit('boom: no such key')"), timeout_s=30),
        Stage("works", "plain", _python("print('fine')"), timeout_s=30),
    ]
    report, seconds = _run(tmp_path, stages, budget_s=120)
    assert seconds < 40  # not the sleeper's 60 s
    statuses = [(r["stage"], r["status"]) for r in report.rows]
    assert statuses == [("sleeps", "timed out"), ("fails", "failed"), ("works", "ok")]
    assert report.rows[0]["notes"] == "stopped at its 5 s limit; last output: started"
    assert report.rows[1]["notes"] == "boom: no such key"
    table = (tmp_path / "out" / f"{report.name}.md").read_text()
    assert "| sleeps | (stage) |  | timed out |" in table
    assert json.loads((tmp_path / "out" / f"{report.name}.json").read_text())["finished"]


def test_the_budget_stops_a_stage_and_skips_those_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "MIN_STAGE_S", 1.0)
    stages = [
        Stage("sleeps", "plain", SLEEPER, timeout_s=60),
        Stage("never", "plain", _python("print('never')"), timeout_s=60),
    ]
    report, seconds = _run(tmp_path, stages, budget_s=2.0)
    assert seconds < 15
    assert [r["status"] for r in report.rows] == ["timed out", "skipped"]
    assert report.rows[1]["notes"].startswith("not started: 0 s left of the 2 s budget")


def test_bench_rows_get_their_speed_up_over_fp32_at_the_same_batch(tmp_path: Path) -> None:
    def result(row: str, batch: int, ms: float, plain_ms: float | None) -> dict:
        side = {"ms_per_step": ms, "images_per_s": batch * 1e3 / ms, "peak_mib": 900.0}
        plain = None if plain_ms is None else {"ms_per_step": plain_ms, "images_per_s": 1.0}
        return {"row": row, "batch": batch, "lightning": side, "plain": plain}

    path = tmp_path / "bench.json"
    path.write_text(
        json.dumps({"results": [result("fp32", 1, 100.0, 80.0), result("fp32", 16, 400.0, None)]})
    )
    fp32 = stage_rows(Stage("bench fp32", "bench", (), 1, path), "ok", "", 9.0, 0.0)
    path.write_text(json.dumps({"results": [result("perf=fast", 1, 40.0, None)]}))
    fast = stage_rows(Stage("bench perf=fast", "bench", (), 1, path), "timed out", "x", 9.0, 0.0)
    report = _report(tmp_path, 60)
    report.add("bench", fp32 + fast, "ok", 9.0, "")
    lines = report.markdown(finished=True).splitlines()
    assert (
        "| bench fp32 | fp32 | 1 | ok | 10.00 | 100.0 | 1.00 | 1.25 | 1.00 | 900 |  |  |" in lines
    )
    assert (
        "| bench perf=fast | perf=fast | 1 | ok | 25.00 | 40.0 |  |  | 2.50 | 900 |  |  |" in lines
    )
    # the stopped stage says so under the row it finished
    assert fast[-1]["status"] == "timed out" and "rows above finished" in fast[-1]["notes"]


def test_two_epochs_extrapolate_to_the_recipe(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    # launched at 1000 s: 10 s start-up, a 30 s first epoch, a 20 s second one
    path.write_text(json.dumps({"epoch_starts": [1010, 1040], "end": 1060, "images": 400}))
    stage = Stage("facades", "e2e", (), 1, path, {"epochs": 2, "recipe_epochs": 200})
    (estimate,) = stage_rows(stage, "ok", "", 61.0, launched=1000.0)
    assert estimate["minutes_for_recipe"] == pytest.approx((60 + 198 * 20) / 60, abs=0.01)
    assert estimate["img_s"] == 20.0
    assert "start-up 10 s, epochs 30.0, 20.0 s" in estimate["notes"]


@pytest.mark.slow
def test_the_dry_run_goes_through_every_stage_on_a_cpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    # the entry make gpu-check runs; Hydra & co. import here, so it installs nothing
    script = SRC.parent / "experiments" / "throughput" / "gpu_check.sh"
    command = [str(script), "--dry-run", "--budget", "1200", "--work", str(tmp_path / "work")]
    command += ["--out", str(out), "--copy-to", str(tmp_path / "copy")]
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    (table,) = out.glob("gpu-check-dry-run-cpu-*.json")
    report = json.loads(table.read_text())
    assert report["finished"] and report["device"]["gpu"] is None
    bad = [r for r in report["rows"] if r["status"] not in ("ok", "skipped")]
    assert not bad, bad
    stages = {r["stage"] for r in report["rows"]}
    for expected in ("packages", "data (generated pairs)", "pytest -m gpu", "syncs perf=graph"):
        assert expected in stages
    bench = [(r["what"], r["batch"]) for r in report["rows"] if r["stage"].startswith("bench")]
    assert bench == [("fp32", 2), ("perf=graph", 2)]
    assert all(r["img_s"] > 0 and r["plain_img_s"] > 0 for r in report["rows"] if r["batch"] == 2)
    (estimate,) = [r for r in report["rows"] if r["what"] == "200-epoch estimate"]
    assert estimate["minutes_for_recipe"] > 0
    assert {p.name for p in (tmp_path / "copy").iterdir()} == {
        table.name,
        table.with_suffix(".md").name,
        table.with_suffix(".log").name,
    }
