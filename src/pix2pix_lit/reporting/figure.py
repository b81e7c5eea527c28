"""The report's figure: each job's last samples above the loss curves of all jobs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.metrics.fcn_score import PREFIX as FCN_PREFIX
from pix2pix_lit.reporting.jobs import EVAL_PREFIX, Job, split_overrides

# (title, metrics.csv key, per step) of the loss-curve panels
CURVES = (
    ("train G_L1", "train/G_L1_step", True),
    ("train G_GAN", "train/G_GAN_step", True),
    ("train D (real + fake) / 2", "train/D_step", True),
    ("val L1", "val/L1", False),
    ("val accuracy of C_T on G(source)", "val/accuracy", False),
    # evaluations of the checkpoints along the way (python -m pix2pix_lit.evaluate)
    ("eval SSIM", f"{EVAL_PREFIX}SSIM", False),
    ("eval FCN per-pixel accuracy", f"{EVAL_PREFIX}{FCN_PREFIX}pixel_accuracy", False),
    ("eval label per-pixel accuracy", f"{EVAL_PREFIX}pixel_accuracy", False),
)
CURVE_HEIGHT_IN = 3.2
# a per-step curve of more points than this many windows is drawn with its trailing mean over
# len / SMOOTHING_POINTS points on top (a long run logs hundreds of noisy batch losses)
SMOOTHING_POINTS = 20


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
        f"{job.name}: " + (" ".join(mine) or "(no overrides)").replace("$", r"\$")
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
                colour, label = f"C{i % 10}", name.split(":")[0]
                window = max(1, len(values) // SMOOTHING_POINTS) if per_step else 1
                if window > 1:  # the logged values faint, their trend on top
                    ax.plot(steps, values, color=colour, linewidth=0.5, alpha=0.25)
                    values = trailing_mean(values, window)
                ax.plot(
                    steps,
                    values,
                    color=colour,
                    label=label,
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


def trailing_mean(values: Sequence[float], window: int) -> list[float]:
    """The mean of each value and the ``window - 1`` before it (fewer at the start)."""
    means, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        means.append(total / min(i + 1, window))
    return means


def _wrap(text: str, width: int = 40) -> str:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    return "\n".join([*lines, line])
