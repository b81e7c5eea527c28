"""From a finished (or stopped) stage to rows of the gpu-check table.

Every row has the keys of :data:`COLUMNS`. A stage that failed or ran out of time gets a row
saying so, with its output's last line, beside whatever rows it finished.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from pix2pix_lit.gpu_check.plan import Stage

COLUMNS = (
    "stage", "what", "batch", "status", "img_s", "ms_step", "plain_img_s",
    "lightning_vs_plain", "vs_fp32", "peak_mib", "seconds", "notes",
)  # fmt: skip

Row = dict[str, Any]


def row(stage: Stage, **values: Any) -> Row:
    """A table row of ``stage``; columns not given are empty."""
    return {key: None for key in COLUMNS} | {"stage": stage.name} | values


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def read_result(path: Path | None) -> dict[str, Any]:
    """The JSON a stage wrote (empty when it wrote none, or was stopped while writing)."""
    if path is None or not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:  # written while the stage was stopped
        return {}


def _status_row(stage: Stage, status: str, output: str, seconds: float, done: bool) -> Row:
    if status == "timed out":
        notes = f"stopped at its {seconds:.0f} s limit" + ("; rows above finished" if done else "")
        notes += f"; last output: {_last_line(output)}"
    else:
        notes = _last_line(output)
    return row(stage, what="(stage)", status=status, seconds=round(seconds, 1), notes=notes)


def _written_rows(stage: Stage, data: dict[str, Any], seconds: float) -> list[Row]:
    return [row(stage, seconds=round(seconds, 1)) | r for r in data.get("rows", [])]


def _bench_rows(stage: Stage, data: dict[str, Any], seconds: float) -> list[Row]:
    rows = []
    for result in data.get("results", []):
        a, b = result["lightning"] or {}, result["plain"] or {}
        ratio = None
        if a.get("ms_per_step") and b.get("ms_per_step"):
            ratio = round(a["ms_per_step"] / b["ms_per_step"], 2)
        notes = "" if a else "plain loop only"
        rows.append(
            row(
                stage,
                what=result["row"],
                batch=result["batch"],
                status="ok",
                img_s=a.get("images_per_s"),
                ms_step=a.get("ms_per_step"),
                plain_img_s=b.get("images_per_s"),
                lightning_vs_plain=ratio,
                peak_mib=a.get("peak_mib") or b.get("peak_mib"),
                notes=notes,
            )
        )
    return rows


def _sync_rows(stage: Stage, data: dict[str, Any], seconds: float) -> list[Row]:
    if not data:
        return []
    per_step = data["per_step"]
    if not data["cuda"]:
        notes = "no CUDA device: the sync debug mode has nothing to watch (dry run)"
    else:
        sites = "; ".join(f"{site} ×{n}" for site, n in list(data["sites"].items())[:4])
        notes = f"syncs per step: {' '.join(map(str, per_step))}" + (
            f"; at {sites}" if sites else ""
        )
    return [row(stage, what="syncs per step", status="ok", seconds=round(seconds, 1), notes=notes)]


def _end_to_end_rows(
    stage: Stage, data: dict[str, Any], seconds: float, launched: float
) -> list[Row]:
    starts = data.get("epoch_starts", [])
    if len(starts) < 2:
        return []
    bounds = [*starts, data["end"]]
    epochs = [b - a for a, b in pairwise(bounds)]
    recipe = stage.info["recipe_epochs"]
    # the measured command (start-up, the first epoch's warm-up) plus the remaining epochs at
    # the pace of the last one
    total = (data["end"] - launched) + (recipe - len(epochs)) * epochs[-1]
    notes = (
        f"start-up {starts[0] - launched:.0f} s, epochs {', '.join(f'{e:.1f}' for e in epochs)} s "
        f"(validation and checkpoint included) → {recipe} epochs ≈ {total / 60:.1f} min"
    )
    return [
        row(
            stage,
            what=f"{recipe}-epoch estimate",
            batch=1,
            status="ok",
            img_s=round(data["images"] / epochs[-1], 2),
            seconds=round(seconds, 1),
            notes=notes,
            minutes_for_recipe=round(total / 60, 2),
        )
    ]


def _pytest_rows(stage: Stage, status: str, output: str, seconds: float) -> list[Row]:
    # "3 passed, 2 skipped in 12.34s" (pytest's last line; 5 = no tests collected)
    summary = re.findall(r"^=*\s*(\d+ \w+.*? in [\d.]+s.*?)\s*=*$", output, re.M)
    notes = summary[-1] if summary else _last_line(output)
    failures = re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    if failures:
        notes += "; " + ", ".join(f.split("::")[-1] for f in failures[:6])
    return [row(stage, what="pytest -m gpu", status=status, seconds=round(seconds, 1), notes=notes)]


Parser = Callable[[Stage, dict[str, Any], float], list[Row]]
_PARSERS: dict[str, Parser] = {
    "probe": lambda stage, data, seconds: [],
    "packages": _written_rows,
    "bench": _bench_rows,
    "syncs": _sync_rows,
}


def stage_rows(
    stage: Stage, status: str, output: str, seconds: float, launched: float
) -> list[Row]:
    """The rows of ``stage``: those it finished, then its status when that is not ok."""
    if stage.kind == "pytest":
        return _pytest_rows(stage, status, output, seconds)
    data = read_result(stage.result)
    if stage.kind == "e2e":
        rows = _end_to_end_rows(stage, data, seconds, launched)
    elif stage.kind in _PARSERS:
        rows = _PARSERS[stage.kind](stage, data, seconds)
    else:
        rows = []
    if status == "ok" and (rows or stage.kind == "probe"):
        return rows
    if status == "ok" and stage.kind == "plain":  # a command without rows (data generation)
        return [row(stage, what="done", status="ok", seconds=round(seconds, 1))]
    if status == "ok":
        status = "failed"  # it exited without writing its result
    return [*rows, _status_row(stage, status, output, seconds, bool(rows))]
