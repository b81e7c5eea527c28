"""Segmentation scores for translations that produce colour-coded label maps.

With a palette (one RGB colour per class) every pixel of an output or target image is assigned
the class of its nearest palette colour; the two class maps are compared through a confusion
matrix, as the FCN-score of pix2pix (Isola et al. 2017, Sec. 4.2) does:

* ``pixel_accuracy``: correctly labelled pixels / all pixels;
* ``class_accuracy``: per-class accuracy (correct / target pixels of the class), averaged over
  the classes present in the target;
* ``mean_IoU``: per-class intersection over union, averaged over the classes present in the
  target or the output (a class only predicted scores IoU 0; one in neither is skipped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.utils.images import to_uint8

LABEL_METRICS: tuple[str, ...] = ("pixel_accuracy", "class_accuracy", "mean_IoU")


@dataclass(frozen=True)
class Palette:
    """Class names and their RGB colours; class ``i`` is ``names[i]`` drawn in ``colors[i]``."""

    name: str
    names: tuple[str, ...]
    colors: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if not self.names or len(self.names) != len(self.colors):
            raise ConfigError(
                f"palette {self.name!r} needs one colour per class and at least one class, "
                f"got {len(self.names)} names and {len(self.colors)} colours"
            )
        for class_name, color in zip(self.names, self.colors, strict=True):
            if len(color) != 3 or not all(0 <= c <= 255 for c in color):
                raise ConfigError(
                    f"palette {self.name!r} class {class_name!r} has colour {list(color)}; "
                    "use [R, G, B] with values in 0..255"
                )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Palette:
        """Build from a ``conf/palette`` entry: ``name`` and ``classes: [{name, color}, ...]``."""
        name = str(cfg.get("name", "palette"))
        classes: Sequence[Mapping[str, Any]] = cfg.get("classes") or []
        if not all(isinstance(c, Mapping) and {"name", "color"} <= c.keys() for c in classes):
            raise ConfigError(
                f"palette {name!r}: every entry of classes needs a name and a color, "
                "e.g. {name: window, color: [0, 128, 255]}"
            )
        return cls(
            name=name,
            names=tuple(str(c["name"]) for c in classes),
            colors=tuple(tuple(int(v) for v in c["color"]) for c in classes),
        )

    @property
    def num_classes(self) -> int:
        return len(self.names)


def class_indices(images: Tensor, palette: Palette) -> Tensor:
    """(N, C, H, W) images in [-1, 1] → (N, H, W) class indices of the nearest palette colour.

    Distances are measured on the 8-bit colours that are saved as PNG, so scoring the saved
    images gives the same numbers.
    """
    n, _, height, width = images.shape
    pixels = to_uint8(images).float().permute(0, 2, 3, 1).reshape(-1, 3)
    colors = torch.tensor(palette.colors, dtype=torch.float32)
    # Exact differences (no matrix-product shortcut), so exact palette colours never tie.
    distances = torch.cdist(pixels, colors, compute_mode="donot_use_mm_for_euclid_dist")
    return distances.argmin(1).reshape(n, height, width)


def paint(classes: Tensor, palette: Palette) -> Tensor:
    """(N, H, W) class indices → (N, 3, H, W) images in [-1, 1] drawn in the palette's colours
    (the inverse of :func:`class_indices`)."""
    colors = torch.tensor(palette.colors, dtype=torch.float32, device=classes.device)
    return (colors[classes].permute(0, 3, 1, 2) / 127.5 - 1).contiguous()


def confusion_matrix(predicted: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """(K, K) pixel counts; row = target class, column = predicted class."""
    index = target.flatten().long() * num_classes + predicted.flatten().long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_scores(confusion: Tensor) -> dict[str, Tensor]:
    """Per-class ``accuracy`` and ``IoU`` (NaN where undefined: class absent) from a confusion."""
    confusion = confusion.double()
    correct = confusion.diagonal()
    in_target = confusion.sum(1)
    union = in_target + confusion.sum(0) - correct
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    return {
        "accuracy": torch.where(in_target > 0, correct / in_target.clamp(min=1), nan),
        "IoU": torch.where(union > 0, correct / union.clamp(min=1), nan),
    }


def label_scores(confusion: Tensor) -> dict[str, float]:
    """``pixel_accuracy``, ``class_accuracy`` and ``mean_IoU`` of a confusion matrix."""
    per_class = per_class_scores(confusion)
    return {
        "pixel_accuracy": float(confusion.diagonal().sum() / confusion.sum().clamp(min=1)),
        "class_accuracy": float(per_class["accuracy"].nanmean()),
        "mean_IoU": float(per_class["IoU"].nanmean()),
    }
