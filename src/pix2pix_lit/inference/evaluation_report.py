"""What an evaluation leaves in its output folder: ``metrics.json`` (split averages and
per-image scores) and the ``index.html`` gallery beside the images."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.inference import gallery
from pix2pix_lit.inference.scoring import IMAGES_DIR, ROLES, Evaluation, finite_or_none
from pix2pix_lit.metrics import PSNR_CAP_DB
from pix2pix_lit.training.storage import write_atomically

METRICS_FILE = "metrics.json"
GALLERY_FILE = "index.html"


def prepare_output_dir(output_dir: str | Path, overwrite: bool) -> Path:
    """Create ``output_dir``; refuse (or, with ``overwrite``, clear) earlier evaluation outputs.

    Only files this module writes are removed: ``metrics.json``, ``index.html`` and
    ``images/*_{input,output,target}.png``.
    """
    output_dir = Path(output_dir)
    images_dir = output_dir / IMAGES_DIR
    previous = [output_dir / f for f in (METRICS_FILE, GALLERY_FILE) if (output_dir / f).exists()]
    if images_dir.is_dir():
        previous += [p for role in ROLES for p in images_dir.glob(f"*_{role}.png")]
    if previous and not overwrite:
        found = ", ".join(sorted({p.relative_to(output_dir).parts[0] for p in previous}))
        if not (output_dir / METRICS_FILE).exists():
            found += f"; no {METRICS_FILE}: an evaluation stopped before it finished"
        raise ConfigError(
            f"output_dir={output_dir} already holds evaluation outputs ({found}); "
            "pass overwrite=true to replace them, or choose another output_dir"
        )
    for path in previous:
        path.unlink()
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir


def write_report(output_dir: str | Path, evaluation: Evaluation, info: Mapping[str, Any]) -> Path:
    """Write ``metrics.json`` (``info`` + scores) and the ``index.html`` gallery; return the JSON.

    NaN/inf scores are written as null, so the JSON is strict.
    """
    output_dir = Path(output_dir)
    report = {
        **info,
        "count": evaluation.count,
        "psnr_cap_db": PSNR_CAP_DB,
        "metrics": json_safe(evaluation.metrics),
        "unavailable": dict(evaluation.unavailable),
        "per_class": evaluation.per_class,
        "per_image": [json_safe(r) for r in evaluation.per_image],
    }
    (output_dir / GALLERY_FILE).write_text(gallery_html(evaluation, info))
    path = output_dir / METRICS_FILE
    # last and whole: a metrics.json means a finished evaluation (scripts skip those)
    write_atomically(path, (json.dumps(report, indent=2, allow_nan=False) + "\n").encode())
    return path


def json_safe(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with its non-finite float values as None."""
    return {k: finite_or_none(v) if isinstance(v, float) else v for k, v in record.items()}


def format_score(value: float | None) -> str:
    """A score for the log and the gallery: 4 significant digits, ``n/a`` when not finite."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"


def gallery_html(evaluation: Evaluation, info: Mapping[str, Any]) -> str:
    """A self-contained page: one row per image (input | output | target, name, scores),
    sortable and filterable by score (:mod:`pix2pix_lit.inference.gallery`).

    Image links are relative (``images/...``), so the page opens from disk without a server.
    """
    esc = html.escape
    summary = ", ".join(f"{esc(k)} {format_score(v)}" for k, v in evaluation.metrics.items())
    details = ", ".join(f"{esc(str(k))}={esc(str(v))}" for k, v in info.items())
    rows = []
    for record in evaluation.per_image:
        name = record["name"]
        cells = "".join(
            f'<td><img src="{IMAGES_DIR}/{quote(f"{name}_{role}.png")}" alt="{esc(role)}"></td>'
            for role in ROLES
        )
        scores = "<br>".join(
            f"{esc(k)} {format_score(v)}" for k, v in record.items() if isinstance(v, float)
        )
        rows.append(
            f"<tr{gallery.row_attributes(record)}><td>{esc(name)}</td>{cells}<td>{scores}</td></tr>"
        )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pix2pix_lit evaluation ({evaluation.count} images)</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px; vertical-align: top; text-align: left; }}
img {{ width: 256px; image-rendering: pixelated; }}
</style>
</head>
<body>
<h1>pix2pix_lit evaluation</h1>
<p>{details}</p>
<p><b>Means over {evaluation.count} images:</b> {summary}</p>
{gallery.controls(gallery.score_names(evaluation.per_image))}
<table id="{gallery.TABLE_ID}">
<thead><tr><th>name</th><th>input</th><th>output</th><th>target</th><th>scores</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</body>
</html>
"""
