"""Translate a folder of images of any size with a trained generator.

Generators only accept some sizes (a U-Net with ``num_downs`` levels: multiples of
``2**num_downs``; the ResNet generator: multiples of 4). Each image is reflect-padded up to the
next accepted size and the output cropped back, or, with ``resize``, resized to a square side
(the training crop size by default) and the output resized back. Images of the same working size
are batched together; an unreadable image is skipped with a warning and counted.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor
from tqdm import tqdm

from pix2pix_lit.checkpoints import load_task, resolve_device
from pix2pix_lit.data.io import IMAGE_EXTENSIONS, image_size, list_images, read_rgb
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.inference import check_inference_mode
from pix2pix_lit.networks.shapes import SizeRule, size_rule
from pix2pix_lit.tasks.base import TranslationTask
from pix2pix_lit.utils.images import save_png, to_uint8

log = logging.getLogger(__name__)

Size = tuple[int, int]  # (height, width)


@contextmanager
def repeatable_noise(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's generator for the block and restore its state afterwards.

    The paper protocol draws dropout noise at test time; with a seed the same inputs give the
    same outputs on every run, and the caller's random stream is left as it was.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def to_signed_tensor(images: Sequence[np.ndarray]) -> Tensor:
    """HWC uint8 arrays of one size → an (N, C, H, W) float batch in [-1, 1]."""
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return batch / 127.5 - 1


def _resize(image: np.ndarray, size: Size) -> np.ndarray:
    # Bicubic, like the data pipeline's resize, so the generator sees what it was trained on.
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


@dataclass(frozen=True)
class Fit:
    """How an image of ``original`` size is brought to the generator's ``working`` size."""

    original: Size
    working: Size
    resize: bool

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.resize:
            return _resize(image, self.working)
        (top, bottom), (left, right) = self._padding()
        # numpy's reflect keeps reflecting when the padding is wider than the image.
        return np.pad(image, ((top, bottom), (left, right), (0, 0)), mode="reflect")

    def undo(self, output: np.ndarray) -> np.ndarray:
        if self.resize:
            return _resize(output, self.original)
        (top, _), (left, _) = self._padding()
        height, width = self.original
        return output[top : top + height, left : left + width]

    def _padding(self) -> tuple[tuple[int, int], ...]:
        # Centred, so both borders get the same reflected context.
        pads = (w - o for w, o in zip(self.working, self.original, strict=True))
        return tuple((p // 2, p - p // 2) for p in pads)


def fit_size(original: Size, rule: SizeRule, resize_to: int | None) -> Fit:
    """The working size for an image: ``resize_to`` squared (or the generator's fixed size),
    else the original padded up to the next multiple the generator accepts."""
    side = rule.fixed or resize_to
    if side is not None:
        if side % rule.multiple:
            raise ConfigError(
                f"resize_size={side} is not a multiple of {rule.multiple}, which the generator "
                f"needs; use e.g. {math.ceil(side / rule.multiple) * rule.multiple}"
            )
        return Fit(original, (side, side), resize=True)
    height, width = (math.ceil(s / rule.multiple) * rule.multiple for s in original)
    return Fit(original, (height, width), resize=False)


@dataclass
class PredictionSummary:
    """What :func:`predict_folder` did: files written, and unreadable inputs with the reason."""

    output_dir: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"translated {len(self.written)} image(s) into {self.output_dir}"
        if self.skipped:
            names = ", ".join(p.name for p, _ in self.skipped)
            text += f"; skipped {len(self.skipped)} unreadable: {names}"
        return text


def output_paths(inputs: Sequence[Path], output_dir: Path) -> dict[Path, Path]:
    """``<stem>.png`` per input; inputs sharing a stem (a.jpg, a.png) keep the full name."""
    stems: dict[str, int] = defaultdict(int)
    for path in inputs:
        stems[path.stem] += 1
    return {
        path: output_dir / (f"{path.stem if stems[path.stem] == 1 else path.name}.png")
        for path in inputs
    }


def _check_folders(input_dir: Path, output_dir: Path) -> list[Path]:
    if not input_dir.is_dir():
        raise DataError(f"input_dir={input_dir} is not a folder; pass the folder of images")
    if output_dir.resolve() == input_dir.resolve():
        raise ConfigError(
            f"output_dir={output_dir} is input_dir; choose another folder for the outputs"
        )
    inputs = list_images(input_dir)
    if not inputs:
        raise DataError(
            f"input_dir={input_dir} contains no images; put {', '.join(IMAGE_EXTENSIONS)} files "
            "directly in it"
        )
    return inputs


def predict_folder(
    task: TranslationTask,
    input_dir: str | Path,
    output_dir: str | Path,
    *,
    batch_size: int = 8,
    resize_to: int | None = None,
    overwrite: bool = False,
    seed: int | None = 0,
) -> PredictionSummary:
    """Translate every image directly in ``input_dir`` into ``output_dir/<stem>.png``.

    Outputs have the size of their input. ``resize_to`` (a side) resizes instead of padding.
    Raises DataError for a missing or empty ``input_dir`` and ConfigError when outputs exist
    and ``overwrite`` is false. Runs ``task.generate`` (the task's inference protocol); in the
    paper protocol, batch norm uses the statistics of each batch, so ``batch_size=1`` is what
    treats every image on its own.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be a positive integer")
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    inputs = _check_folders(input_dir, output_dir)
    targets = output_paths(inputs, output_dir)
    existing = [p.name for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"output_dir={output_dir} already holds {len(existing)} of the outputs "
            f"({', '.join(existing[:3])}{', ...' if len(existing) > 3 else ''}); "
            "pass overwrite=true to replace them, or choose another output_dir"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = PredictionSummary(output_dir)
    rule = size_rule(task.translation_network())

    groups: dict[Size, list[tuple[Path, Fit]]] = defaultdict(list)
    for path in inputs:
        try:
            width, height = image_size(path)
        except DataError as err:
            _skip(summary, path, err)
            continue
        fit = fit_size((height, width), rule, resize_to)
        groups[fit.working].append((path, fit))

    total = sum(len(g) for g in groups.values())
    with repeatable_noise(seed, task.device), tqdm(total=total, unit="img") as progress:
        for members in groups.values():
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                _translate_chunk(task, chunk, targets, summary)
                progress.update(len(chunk))
    return summary


def _skip(summary: PredictionSummary, path: Path, err: DataError) -> None:
    log.warning("skipping unreadable image: %s", err)
    summary.skipped.append((path, str(err)))


def _translate_chunk(
    task: TranslationTask,
    chunk: list[tuple[Path, Fit]],
    targets: dict[Path, Path],
    summary: PredictionSummary,
) -> None:
    readable, arrays = [], []
    for path, fit in chunk:
        try:
            arrays.append(fit.apply(read_rgb(path)))
        except DataError as err:  # a header that reads but pixel data that does not
            _skip(summary, path, err)
            continue
        readable.append((path, fit))
    if not readable:
        return
    outputs = task.generate(to_signed_tensor(arrays).to(task.device))
    for (path, fit), output in zip(readable, to_uint8(outputs), strict=True):
        image = fit.undo(output.permute(1, 2, 0).numpy())
        summary.written.append(save_png(np.ascontiguousarray(image), targets[path]))


def run_prediction(cfg: DictConfig) -> PredictionSummary:
    """Translate ``cfg.input_dir`` as the ``predict`` config says."""
    for key in ("ckpt_path", "input_dir", "output_dir"):
        if not cfg.get(key):
            raise ConfigError(
                f"{key} is not set; usage: python -m pix2pix_lit.predict "
                "ckpt_path=<file.ckpt> input_dir=<folder> [output_dir=<folder>]"
            )
    task = load_task(cfg.ckpt_path, resolve_device(cfg.device), cfg.get("direction"))
    if cfg.get("inference") is not None:
        task.inference = check_inference_mode(cfg.inference)
    resize_to = None
    if cfg.resize:
        resize_to = cfg.resize_size or (task.run_config or {}).get("data", {}).get("crop_size")
        if not resize_to:
            raise ConfigError(
                "resize=true needs resize_size=<side>: the checkpoint has no crop_size"
            )
    log.info(
        "Translating %s with %s (inference=%s, seed=%s, %s)",
        cfg.input_dir,
        cfg.ckpt_path,
        task.inference,
        cfg.seed,
        f"resized to {resize_to}x{resize_to}" if resize_to else "padded",
    )
    return predict_folder(
        task,
        cfg.input_dir,
        cfg.output_dir,
        batch_size=cfg.batch_size,
        resize_to=resize_to,
        overwrite=cfg.overwrite,
        seed=cfg.seed,
    )
