"""The report's markdown table (one row per job) and its place in a study's README."""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path

from pix2pix_lit.errors import DataError
from pix2pix_lit.metrics.labels import LABEL_METRICS
from pix2pix_lit.reporting.jobs import Job, split_overrides

BEGIN_MARKER = "<!-- report:begin -->"
END_MARKER = "<!-- report:end -->"
TABLE_FILE = "report.md"
FIGURE_FILE = "report.png"
# (column title, metrics.csv key) of the table, in order; empty columns are left out
TRAIN_COLUMNS = (
    ("G_GAN", "train/G_GAN_epoch"),
    ("G_L1", "train/G_L1_epoch"),
    ("D_real", "train/D_real_epoch"),
    ("D_fake", "train/D_fake_epoch"),
    # the DTN's (task=dtn)
    ("G_GANG", "train/G_GANG_epoch"),
    ("G_CONST", "train/G_CONST_epoch"),
    ("G_TID", "train/G_TID_epoch"),
    ("D", "train/D_epoch"),
)
SCORE_COLUMNS = ("val/L1", "val/PSNR", "val/SSIM", "test/L1", "test/PSNR", "test/SSIM")
# the DTN's accuracies (task=dtn: C_T on G(source), on the target, on grey sources; f's)
SCORE_COLUMNS += tuple(
    f"{stage}/accuracy{kind}"
    for stage in ("val", "test")
    for kind in ("", "_target", "_grayscale_source", "_f_source")
)


def _format(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4g}"


def _format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def markdown_table(jobs: Sequence[Job]) -> str:
    """One row per job: its own overrides, training length, losses, scores and outputs."""
    shared, own = split_overrides(jobs)
    train = [
        (title, key) for title, key in TRAIN_COLUMNS if any(j.last(key) is not None for j in jobs)
    ]
    scores = [key for key in SCORE_COLUMNS if any(j.last(key) is not None for j in jobs)]
    labels = [key for key in LABEL_METRICS if any(key in j.label_metrics for j in jobs)]
    has_l1 = any(j.series("val/L1") for j in jobs)  # not the DTN's, which reports accuracies
    header = ["job", "overrides", "epochs", *(t for t, _ in train)]
    header += [
        *scores,
        *(f"{k} (eval)" for k in labels),
        *(["best val/L1"] if has_l1 else []),
        "wall time",
        "best checkpoint",
    ]
    lines = [
        f"Shared overrides: `{' '.join(shared)}`" if shared else "No shared overrides.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for job, mine in zip(jobs, own, strict=True):
        val = [v for _, v in job.series("val/L1")]
        cells = [
            job.path.name,
            " ".join(f"`{o}`" for o in mine) or "(none)",
            str(job.epochs) if job.rows else "no metrics",
            *(_format(job.last(key)) for _, key in train),
            *(_format(job.last(key)) for key in scores),
            *(_format(job.label_metrics.get(key)) for key in labels),
            *([_format(min(val)) if val else "–"] if has_l1 else []),
            _format_duration(job.wall_time_s),
            f"`{job.best_checkpoint}`" if job.best_checkpoint else "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, table: str, figure: Path) -> None:
    """Replace the report block of ``readme`` with ``table`` and the figure (copied beside it)."""
    text = readme.read_text()
    if text.count(BEGIN_MARKER) != 1 or text.count(END_MARKER) != 1:
        raise DataError(
            f"{readme} needs exactly one {BEGIN_MARKER} and one {END_MARKER} line to put the "
            "report between"
        )
    shutil.copyfile(figure, readme.parent / FIGURE_FILE)
    head, rest = text.split(BEGIN_MARKER)
    _, tail = rest.split(END_MARKER)
    block = f"{BEGIN_MARKER}\n{table}\n![samples and curves]({FIGURE_FILE})\n{END_MARKER}"
    readme.write_text(head + block + tail)
