"""The run records committed under experiments/records (``report --keep-records``): each one
the report reads as a finished job with the config it resolved, and none naming a folder of the
machine it was kept on."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from pix2pix_lit.reporting.jobs import evaluation_reports, find_job_dirs, load_job
from pix2pix_lit.reporting.records import RESOLVED_CONFIG

RECORDS = Path(__file__).resolve().parents[1] / "experiments" / "records"
JOBS = sorted(
    job
    for folder in (RECORDS.iterdir() if RECORDS.is_dir() else [])
    if folder.is_dir()
    for job in find_job_dirs(folder)
)


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("job", JOBS, ids=lambda p: str(p.relative_to(RECORDS)))
def test_a_committed_record_is_a_finished_job_with_relative_paths(job: Path) -> None:
    loaded = load_job(job)
    assert loaded.finished and loaded.epochs > 0 and loaded.wall_time_logged
    resolved = OmegaConf.to_container(OmegaConf.load(job / RESOLVED_CONFIG))
    # the precision the run trained in, not perf=fast's interpolation of the reading machine
    assert str(resolved["trainer"]["precision"]) in {"32-true", "bf16-mixed", "16-mixed"}
    for report in [*job.glob("**/*.json"), job / RESOLVED_CONFIG]:
        written = json.loads(report.read_text()) if report.suffix == ".json" else resolved
        absolute = [s for s in strings(written) if os.path.isabs(s)]
        assert absolute == [], f"{report}: absolute paths {absolute}"
    assert not list(job.glob("**/*.ckpt")), "a record holds no checkpoints"
    for report in evaluation_reports(job):
        scored = json.loads(report.read_text())
        if any(name.startswith("FCN/") for name in scored["metrics"]):
            assert len(scored.get("segmenter_sha256") or "") == 64, f"{report}: which segmenter?"
