"""The report's markdown tables (one row per job; per group of seeds; along the way) and
their place in a study's README."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from pix2pix_lit.errors import DataError
from pix2pix_lit.metrics.fcn_score import PREFIX as FCN_PREFIX
from pix2pix_lit.metrics.fid import DISTRIBUTION_METRICS
from pix2pix_lit.metrics.labels import LABEL_METRICS
from pix2pix_lit.reporting.jobs import Evaluation, Job, split_overrides
from pix2pix_lit.reporting.seeds import group_by_seed, is_seed, mean_and_spread, seed_of

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
    ("CE", "train/CE_epoch"),  # the segmenter's (task=segmenter)
)
SCORE_COLUMNS = ("val/L1", "val/PSNR", "val/SSIM", "test/L1", "test/PSNR", "test/SSIM")
# the segmenter's (task=segmenter: over the split's summed confusion)
SCORE_COLUMNS += tuple(f"{stage}/{k}" for stage in ("val", "test") for k in LABEL_METRICS)
# the DTN's accuracies (task=dtn: C_T on G(source), on the target, on grey sources; f's)
SCORE_COLUMNS += tuple(
    f"{stage}/accuracy{kind}"
    for stage in ("val", "test")
    for kind in ("", "_target", "_grayscale_source", "_f_source")
)
# the scores of an evaluation (metrics.json) the table shows, titled "<metric> (eval)"
EVAL_COLUMNS = (
    "L1",
    "PSNR",
    "SSIM",
    "MS-SSIM",
    *DISTRIBUTION_METRICS[:2],
    *(f"{FCN_PREFIX}{k}" for k in LABEL_METRICS),
    *LABEL_METRICS,
)
# under the table when a job's wall time is marked with a (markdown-escaped) asterisk
UNLOGGED_WALL_TIME = (
    "\\* the run did not log `time/elapsed_s`: its wall time is the span of its run folder's "
    "files, which counts the time between the sessions of a resumed run too."
)


def _format(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4g}"


def _format_spread(values: Sequence[float], expected: int | None = None) -> str:
    """Mean ± sample standard deviation; ``(n=k)`` when only k of ``expected`` values exist."""
    if not values:
        return "–"
    mean, spread = mean_and_spread(values)
    missing = expected is not None and len(values) < expected
    return (
        _format(mean)
        + ("" if spread is None else f" ± {spread:.2g}")
        + (f" (n={len(values)})" if missing else "")
    )


def _format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _epochs(job: Job) -> str:
    if not job.rows:
        return "no metrics"
    return str(job.epochs) + ("" if job.finished else " (unfinished)")


def _evaluated(job: Job) -> str:
    """The epochs the checkpoint of the row's scores had trained: fewer than the job's when
    the latest checkpoint scored is an earlier one."""
    last = job.final_evaluation
    if last is None or last.epochs_trained is None:
        return "–"
    return str(last.epochs_trained) + ("" if last.at_epoch_end else " (mid-epoch)")


def _kept(checkpoints: Sequence[str]) -> str:
    # several kept are not "the best" one: name the range rather than pick one
    if len(checkpoints) > 1:
        return f"{len(checkpoints)} kept, `{checkpoints[0]}` … `{checkpoints[-1]}`"
    return f"`{checkpoints[0]}`" if checkpoints else "–"


def _rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(cells) + " |" for cells in rows),
    ]


def _label(overrides: Sequence[str]) -> str:
    return " ".join(f"`{o}`" for o in overrides) or "(none)"


def markdown_table(jobs: Sequence[Job]) -> str:
    """One row per job: its own overrides, training length, losses, scores and outputs;
    then, when some jobs differ only in their seed, one row per such group (mean ± sample
    standard deviation over the seeds), and the evaluations of checkpoints along the way."""
    shared, own = split_overrides(jobs)
    train = [
        (title, key) for title, key in TRAIN_COLUMNS if any(j.last(key) is not None for j in jobs)
    ]
    scores = [key for key in SCORE_COLUMNS if any(j.last(key) is not None for j in jobs)]
    evals = [key for key in EVAL_COLUMNS if any(key in j.final_scores for j in jobs)]
    has_l1 = any(j.series("val/L1") for j in jobs)  # not the DTN's, which reports accuracies
    header = ["job", "overrides", "epochs", *(t for t, _ in train)]
    header += [
        *scores,
        *(["epochs (eval)"] if evals else []),
        *(f"{k} (eval)" for k in evals),
        *(["best val/L1"] if has_l1 else []),
        "wall time",
        "best checkpoint",
    ]
    rows = []
    for job, mine in zip(jobs, own, strict=True):
        val = [v for _, v in job.series("val/L1")]
        rows.append(
            [
                job.name,
                _label(mine),
                _epochs(job),
                *(_format(job.last(key)) for _, key in train),
                *(_format(job.last(key)) for key in scores),
                *([_evaluated(job)] if evals else []),
                *(_format(job.final_scores.get(key)) for key in evals),
                *([_format(min(val)) if val else "–"] if has_l1 else []),
                _format_duration(job.wall_time_s) + ("" if job.wall_time_logged else "\\*"),
                _kept(job.kept_checkpoints),
            ]
        )
    lines = [
        f"Shared overrides: `{' '.join(shared)}`" if shared else "No shared overrides.",
        "",
        *_rows(header, rows),
    ]
    if not all(job.wall_time_logged for job in jobs if job.wall_time_s is not None):
        lines += ["", UNLOGGED_WALL_TIME]
    groups = group_by_seed(jobs)
    if any(len(group) > 1 for group in groups):
        lines += ["", *_across_seeds(groups, scores, evals, shared)]
    dated = ({e.epoch for j in g for e in j.evaluations if e.at_epoch_end} for g in groups)
    curve = [g for g, epochs in zip(groups, dated, strict=True) if len(epochs) > 1]
    if curve:
        lines += ["", *_along_the_way(curve, evals, shared)]
    return "\n".join(lines) + "\n"


def _own(group: Sequence[Job], shared: Sequence[str]) -> list[str]:
    return [o for o in group[0].overrides if o not in shared and not is_seed(o)]


def _across_seeds(
    groups: Sequence[Sequence[Job]],
    scores: Sequence[str],
    evals: Sequence[str],
    shared: Sequence[str],
) -> list[str]:
    header = ["overrides", "seeds", "epochs", *scores, *(f"{k} (eval)" for k in evals)]
    rows = []
    for group in groups:
        # a mean over runs of different lengths (some still running) would describe none
        epochs = max(job.epochs for job in group)
        full = [job for job in group if job.epochs == epochs]
        short = [f"{seed_of(job)} ({job.epochs})" for job in group if job.epochs < epochs]
        seeds = " ".join(seed_of(job) for job in full)
        rows.append(
            [
                _label(_own(group, shared)),
                seeds + (f"; left out, fewer epochs: {', '.join(short)}" if short else ""),
                str(epochs),
                *(_format_spread(_present(j.last(key) for j in full), len(full)) for key in scores),
                *(
                    _format_spread(
                        _present(j.scores_after(epochs).get(key) for j in full), len(full)
                    )
                    for key in evals
                ),
            ]
        )
    title = (
        "Across seeds (mean ± sample standard deviation over the seeds that trained the most "
        "epochs, evaluations of their checkpoints at that many epochs; one seed: its value; "
        "(n=k): only k of them have the score):"
    )
    return [title, "", *_rows(header, rows)]


def _along_the_way(
    groups: Sequence[Sequence[Job]], evals: Sequence[str], shared: Sequence[str]
) -> list[str]:
    header = ["overrides", "epochs", "seeds", *(f"{k} (eval)" for k in evals)]
    rows = []
    for group in groups:
        by_epoch: dict[int, list[Evaluation]] = {}
        for job in group:
            for evaluation in job.evaluations:
                if evaluation.at_epoch_end:
                    by_epoch.setdefault(evaluation.epochs_trained, []).append(evaluation)
        for epochs, found in sorted(by_epoch.items()):
            rows.append(
                [
                    _label(_own(group, shared)),
                    str(epochs),
                    str(len(found)),
                    *(_format_spread(_present(e.scores.get(key) for e in found)) for key in evals),
                ]
            )
    title = "Evaluations of the checkpoints along the way (mean ± sample standard deviation):"
    return [title, "", *_rows(header, rows)]


def _present(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


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
