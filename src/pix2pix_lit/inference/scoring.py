"""Translate a data split with a generator and score every image: the core of ``evaluate``.

:func:`evaluate` runs the generator over the batches with a fixed seed, writes
``images/<name>_{input,output,target}.png`` and collects per-image scores (image metrics, label
metrics with a palette, FID/KID, FCN-score) into an :class:`Evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pix2pix_lit.errors import DataError
from pix2pix_lit.inference.checkpoint import Translator
from pix2pix_lit.inference.protocol import repeatable_noise
from pix2pix_lit.metrics import (
    DistributionScores,
    Palette,
    class_indices,
    confusion_matrix,
    image_scores,
    label_scores,
    per_class_scores,
)
from pix2pix_lit.metrics.fcn_score import FCNScore
from pix2pix_lit.utils.images import save_png, to_uint8

IMAGES_DIR = "images"
ROLES: tuple[str, ...] = ("input", "output", "target")


@dataclass
class Evaluation:
    """What :func:`evaluate` measured.

    ``metrics``: split-level scores (means of the per-image scores; label metrics from the
    split's summed confusion matrix; FID/KID over the split); ``per_image``: one dict per image
    (``name`` and its scores); ``unavailable``: metric → why it was not computed;
    ``per_class``: class name → ``accuracy`` and ``IoU`` over the split (with a palette).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    per_class: dict[str, dict[str, float | None]] | None = None

    @property
    def count(self) -> int:
        return len(self.per_image)


def evaluate(
    task: Translator,
    batches: Iterable[Mapping[str, Any]],
    output_dir: str | Path,
    *,
    seed: int | None = 0,
    palette: Palette | None = None,
    distribution: DistributionScores | None = None,
    total: int | None = None,
    fcn: FCNScore | None = None,
) -> Evaluation:
    """Translate every batch (``{"A", "B", "A_path"}``) with ``task.generate``; score it.

    Writes ``output_dir/images/<name>_{input,output,target}.png`` (``name``: the file name of
    ``A_path`` without extension). ``seed`` seeds torch's generator first (restored after), so
    the paper protocol's dropout draws the same noise on every run. ``total`` (the number of
    images) sizes the progress bar. ``fcn`` scores the outputs against the inputs (label maps
    → photo) with a segmenter: the FCN-score.
    """
    images_dir = Path(output_dir) / IMAGES_DIR
    result = Evaluation()
    k = 0 if palette is None else palette.num_classes
    confusion = torch.zeros(k, k, dtype=torch.long)
    with repeatable_noise(seed, task.device), tqdm(total=total, unit="img") as progress:
        for batch in batches:
            batch = task.orient_batch(batch)
            inputs, targets = batch["A"].to(task.device), batch["B"].to(task.device)
            outputs = task.generate(inputs).float()
            scores = image_scores(outputs, targets)
            result.unavailable.update(scores.unavailable)
            confusions = None if palette is None else _confusions(outputs, targets, palette)
            if distribution is not None:
                distribution.update(outputs, targets)
            if fcn is not None:
                fcn.update(outputs, inputs)
            for i, path in enumerate(batch["A_path"]):
                name = Path(path).stem
                for role, images in zip(ROLES, (inputs, outputs, targets), strict=True):
                    save_png(_hwc(images[i]), images_dir / f"{name}_{role}.png")
                record: dict[str, Any] = {"name": name}
                record.update({metric: float(v[i]) for metric, v in scores.scores.items()})
                if confusions is not None:
                    record.update(label_scores(confusions[i]))
                    confusion += confusions[i]
                result.per_image.append(record)
            progress.update(len(batch["A_path"]))
        if distribution is not None:
            fid, unavailable = distribution.compute()
            result.metrics.update(fid)
            result.unavailable.update(unavailable)
        if fcn is not None:
            result.metrics.update(fcn.compute())
    if not result.per_image:
        raise DataError(f"the evaluated split has no images (output_dir={output_dir})")
    # Label scores of the split come from its summed confusion matrix (as the FCN-score's
    # do), not from the mean of the per-image scores, so they replace those means.
    result.metrics = {**_means(result.per_image), **result.metrics}
    if palette is not None:
        result.metrics.update(label_scores(confusion))
        result.per_class = _per_class(confusion, palette)
    return result


def _hwc(image: torch.Tensor) -> Any:
    """One (C, H, W) image in [-1, 1] → an (H, W, 3) uint8 array for :func:`save_png`."""
    return to_uint8(image.unsqueeze(0))[0].permute(1, 2, 0).numpy()


def _confusions(outputs: torch.Tensor, targets: torch.Tensor, palette: Palette) -> torch.Tensor:
    """(N, K, K) confusion matrices, one per image, of nearest-palette-colour class maps."""
    predicted, actual = class_indices(outputs, palette), class_indices(targets, palette)
    return torch.stack(
        [
            confusion_matrix(p, a, palette.num_classes)
            for p, a in zip(predicted, actual, strict=True)
        ]
    )


def _means(per_image: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each per-image score over the images that have it."""
    names = dict.fromkeys(k for r in per_image for k, v in r.items() if isinstance(v, float))
    means = {}
    for name in names:
        values = [r[name] for r in per_image if name in r]
        means[name] = sum(values) / len(values)
    return means


def _per_class(confusion: torch.Tensor, palette: Palette) -> dict[str, dict[str, float | None]]:
    scores = per_class_scores(confusion)
    return {
        name: {k: finite_or_none(float(v[i])) for k, v in scores.items()}
        for i, name in enumerate(palette.names)
    }


def finite_or_none(value: float) -> float | None:
    """``value``, or None when it is NaN or infinite (strict JSON has neither)."""
    return value if math.isfinite(value) else None
