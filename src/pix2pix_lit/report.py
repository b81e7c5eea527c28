"""Collect the finished jobs of a sweep into a markdown table and a figure.

``python -m pix2pix_lit.report <multirun dir> [more dirs] [--out DIR] [--readme README.md]``

Each job folder (``<multirun dir>/<job number>``, or a single run's folder) gives its
overrides (``.hydra/overrides.yaml``), its metrics (``csv/metrics.csv``: the final epoch's
training losses, the last and best validation scores, test scores when ``test=true``), label
metrics of an evaluation written inside it (``**/metrics.json`` from
``python -m pix2pix_lit.evaluate ... output_dir=<job>/eval``), its best checkpoint and its
last sample grid (``images/epoch_*.png``). The table has one row per job, labelled by the
overrides that differ between the jobs (the shared ones are listed above it); the figure shows
each job's last samples side by side above the loss curves of all jobs. ``--readme`` writes
both into a study's README between ``<!-- report:begin -->`` and ``<!-- report:end -->``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf
from PIL import Image

from pix2pix_lit.errors import ConfigError, DataError, UserError
from pix2pix_lit.metrics.labels import LABEL_METRICS

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
# (title, metrics.csv key, per step) of the loss-curve panels
CURVES = (
    ("train G_L1", "train/G_L1_step", True),
    ("train G_GAN", "train/G_GAN_step", True),
    ("train D (real + fake) / 2", "train/D_step", True),
    ("val L1", "val/L1", False),
    ("val accuracy of C_T on G(source)", "val/accuracy", False),
)
CURVE_HEIGHT_IN = 3.2


@dataclass
class Job:
    """What one finished (or failed) job left in its folder."""

    path: Path
    overrides: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    label_metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: str | None = None
    sample: Path | None = None
    wall_time_s: float | None = None

    def last(self, key: str) -> float | None:
        """The last logged value of ``key``."""
        values = self.series(key)
        return values[-1][1] if values else None

    def series(self, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of every row that logged ``key``; ``train/D_step`` averages the
        real and fake terms of the discriminator loss."""
        if key == "train/D_step":
            real, fake = self.series("train/D_real_step"), self.series("train/D_fake_step")
            return [(s, (r + f) / 2) for (s, r), (_, f) in zip(real, fake, strict=True)]
        return [(int(row["step"]), float(row[key])) for row in self.rows if row.get(key)]

    @property
    def epochs(self) -> int:
        return max((int(row["epoch"]) + 1 for row in self.rows), default=0)


def relative_override(override: str) -> str:
    """``key=/abs/path`` → ``key=<path relative to the working directory>``, so a report
    committed from one machine does not carry that machine's folders."""
    key, sep, value = override.partition("=")
    if not sep or not os.path.isabs(value):
        return override
    return f"{key}={os.path.relpath(value)}"


def find_job_dirs(path: Path) -> list[Path]:
    """The job folders of a multirun folder (in job order), or ``[path]`` for a run folder."""
    if (path / ".hydra" / "overrides.yaml").is_file():
        return [path]
    jobs = [p for p in path.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()]
    if not jobs:
        raise DataError(
            f"{path} holds no run folders (a run folder has .hydra/overrides.yaml); give a "
            "multirun folder (logs/<task_name>/multiruns/<timestamp>) or a run folder"
        )
    return sorted(jobs, key=lambda p: int(p.name) if p.name.isdigit() else math.inf)


def load_job(path: Path) -> Job:
    """Read one job folder; a job that wrote no metrics yet gets an empty ``rows``."""
    # as written: overrides may hold interpolations, which only resolve inside the job
    overrides = OmegaConf.to_container(OmegaConf.load(path / ".hydra" / "overrides.yaml"))
    job = Job(path=path, overrides=[relative_override(str(o)) for o in overrides or []])
    metrics_csv = path / "csv" / "metrics.csv"
    if metrics_csv.is_file():
        with metrics_csv.open() as f:
            job.rows = list(csv.DictReader(f))
        # written when the job started and when it last logged
        start = (path / ".hydra" / "config.yaml").stat().st_mtime
        job.wall_time_s = metrics_csv.stat().st_mtime - start
    for report in sorted(path.glob("**/metrics.json")):
        scores = json.loads(report.read_text()).get("metrics", {})
        job.label_metrics.update(
            {k: v for k, v in scores.items() if k in LABEL_METRICS and v is not None}
        )
    best = sorted((path / "checkpoints").glob("best*.ckpt"))
    job.best_checkpoint = best[-1].name if best else None
    samples = sorted((path / "images").glob("epoch_*.png"))
    job.sample = samples[-1] if samples else None
    return job


def split_overrides(jobs: Sequence[Job]) -> tuple[list[str], list[list[str]]]:
    """The overrides every job shares, and each job's own (those that tell the jobs apart)."""
    shared = [o for o in jobs[0].overrides if all(o in job.overrides for job in jobs)]
    return shared, [[o for o in job.overrides if o not in shared] for job in jobs]


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


def draw_figure(jobs: Sequence[Job], path: Path, width_px: int = 1600) -> Path:
    """Each job's last sample grid side by side, above one panel per loss curve."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ConfigError(
            "the report's figure needs matplotlib: pip install 'pix2pix-lit[report]'"
        ) from err
    _, own = split_overrides(jobs)
    # "$" would switch matplotlib to math mode (overrides may hold ${...} interpolations)
    names = [
        f"{job.path.name}: " + (" ".join(mine) or "(no overrides)").replace("$", r"\$")
        for job, mine in zip(jobs, own, strict=True)
    ]
    samples = [Image.open(job.sample).convert("RGB") if job.sample else None for job in jobs]
    aspect = max((im.height / im.width for im in samples if im), default=1.0)
    curves = [c for c in CURVES if any(job.series(c[1]) for job in jobs)]
    dpi = 100
    width = width_px / dpi
    # the sample row as high as its images at their column's width, plus their titles
    top_height = width / len(jobs) * aspect + 0.6
    fig = plt.figure(figsize=(width, top_height + CURVE_HEIGHT_IN), dpi=dpi)
    top, bottom = fig.add_gridspec(2, 1, height_ratios=(top_height, CURVE_HEIGHT_IN))
    for cell, image, name in zip(top.subgridspec(1, len(jobs)), samples, names, strict=True):
        ax = fig.add_subplot(cell)
        if image is not None:
            ax.imshow(image)
        ax.set_title(_wrap(name), fontsize=8)
        ax.axis("off")
    for cell, (title, key, per_step) in zip(
        bottom.subgridspec(1, max(len(curves), 1)), curves, strict=False
    ):
        ax = fig.add_subplot(cell)
        for i, (job, name) in enumerate(zip(jobs, names, strict=True)):
            if points := job.series(key):
                steps, values = zip(*points, strict=True)
                # one colour per job in every panel, whichever jobs a panel leaves out
                ax.plot(
                    steps,
                    values,
                    color=f"C{i % 10}",
                    label=name.split(":")[0],
                    linewidth=1,
                    marker=None if per_step else "o",
                )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    if curves:
        fig.axes[-1].legend(fontsize=7, title="job", title_fontsize=7)
    fig.tight_layout()
    fig.canvas.draw()
    rendered = Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba())
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a 256-colour palette (octree keeps the curves' colours) makes the figure ~4x smaller
    rendered.convert("RGB").quantize(256, Image.Quantize.FASTOCTREE).save(path, optimize=True)
    return path


def _wrap(text: str, width: int = 40) -> str:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_lit.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="multirun (or run) folders")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"where {TABLE_FILE} and {FIGURE_FILE} go (default: the first folder)",
    )
    parser.add_argument("--readme", type=Path, help="a README to put the table and figure into")
    args = parser.parse_args(argv)
    try:
        jobs = [load_job(p) for d in args.dirs for p in find_job_dirs(d)]
        out = args.out or args.dirs[0]
        table = markdown_table(jobs)
        out.mkdir(parents=True, exist_ok=True)
        (out / TABLE_FILE).write_text(table)
        figure = draw_figure(jobs, out / FIGURE_FILE)
        if args.readme:
            update_readme(args.readme, table, figure)
    except UserError as err:
        sys.exit(f"error: {err}")
    print(table)
    print(
        f"wrote {out / TABLE_FILE} and {figure}"
        + (f"; updated {args.readme}" if args.readme else "")
    )


if __name__ == "__main__":
    main()
