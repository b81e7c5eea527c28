"""Translate a folder of images of any size with a trained generator.

The generator states the sizes it accepts (:func:`~pix2pix_lit.networks.size_rule`; a U-Net
with ``num_downs`` levels: multiples of ``2**num_downs``; the ResNet generator: multiples of 4).
Each image is reflect-padded up to the next accepted size and the output cropped back, or, with
``resize``, resized to a square side (the training crop size by default) and the output resized
back. Images of the same working size are batched together. An unreadable image, and one the
generator cannot translate (a 1x1 image reaches the ResNet generator's instance norm as a
single pixel), is skipped with a warning and counted.

A rerun with the same settings continues where the last one stopped: each output PNG records
the settings that made it (a text chunk, :data:`SETTINGS_KEY`) and is written whole (a
temporary file, renamed); each batch draws its dropout noise from its own seed (``seed`` + the
batch's number), so the images a rerun adds are those an uninterrupted run would have written.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo
from torch import Tensor
from tqdm import tqdm

from pix2pix_lit.data.io import IMAGE_EXTENSIONS, image_size, list_images, read_image
from pix2pix_lit.data.transforms import resize
from pix2pix_lit.data.transforms import to_signed_tensor as signed_image
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.inference.checkpoint import Translator, load_translator, resolve_device
from pix2pix_lit.inference.protocol import repeatable_noise
from pix2pix_lit.networks import SizeRule, size_rule
from pix2pix_lit.utils.images import to_uint8

log = logging.getLogger(__name__)

Size = tuple[int, int]  # (height, width)
USAGE = (
    "python -m pix2pix_lit.predict ckpt_path=<file.ckpt> input_dir=<folder> [output_dir=<folder>]"
)
#: PNG text key of the settings an output was made with, so that a rerun can continue
SETTINGS_KEY = "pix2pix_lit.predict"


def to_signed_tensor(images: Sequence[np.ndarray]) -> Tensor:
    """HWC uint8 arrays of one size → an (N, C, H, W) float batch in [-1, 1]."""
    return torch.stack([signed_image(image) for image in images])


def _resize(image: np.ndarray, size: Size) -> np.ndarray:
    # The data pipeline's resize (Pillow bicubic), so the generator sees what it was trained on.
    return resize(image, (size[1], size[0]))


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
    """What :func:`predict_folder` did: files written, outputs kept from an earlier run with the
    same settings, and the inputs skipped, unreadable or untranslatable, with the reason."""

    output_dir: Path
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    untranslatable: list[tuple[Path, str]] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"translated {len(self.written)} image(s) into {self.output_dir}"
        if self.kept:
            text += f" ({len(self.kept)} more already there from an earlier run)"
        for skipped, why in ((self.skipped, "unreadable"), (self.untranslatable, "untranslatable")):
            if skipped:
                text += f"; skipped {len(skipped)} {why}: {', '.join(p.name for p, _ in skipped)}"
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


def _outputs_to_keep(
    targets: Mapping[Path, Path], output_dir: Path, settings: str, overwrite: bool
) -> set[Path]:
    """The outputs already made with the same ``settings`` (none with ``overwrite``); raise
    ConfigError when others are there."""
    if overwrite:
        return set()
    existing = [p for p in targets.values() if p.exists()]
    kept = {p for p in existing if _settings_of(p) == settings}
    others = [p.name for p in existing if p not in kept]
    if others:
        raise ConfigError(
            f"output_dir={output_dir} already holds {len(others)} of the "
            f"outputs ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}), not made "
            "with these settings; pass overwrite=true to replace them, or choose another "
            "output_dir"
        )
    return kept


def _settings_of(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            return getattr(image, "text", {}).get(SETTINGS_KEY)
    except (UnidentifiedImageError, OSError):
        return None


def predict_folder(
    task: Translator,
    input_dir: str | Path,
    output_dir: str | Path,
    *,
    batch_size: int = 8,
    resize_to: int | None = None,
    overwrite: bool = False,
    seed: int | None = 0,
    source: Mapping[str, Any] | None = None,
) -> PredictionSummary:
    """Translate every image directly in ``input_dir`` into ``output_dir/<stem>.png``.

    Outputs have the size of their input. ``resize_to`` (a side) resizes instead of padding.
    Raises DataError for a missing or empty ``input_dir`` and ConfigError when outputs of a
    run with other settings exist and ``overwrite`` is false; those of a run with the same
    settings (these arguments, ``task.inference`` and ``source``: where the generator came
    from) are kept. Runs ``task.generate`` (the task's inference protocol); in the paper
    protocol, batch norm uses the statistics of each batch, so ``batch_size=1`` is what
    treats every image on its own.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be a positive integer")
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    inputs = _check_folders(input_dir, output_dir)
    targets = output_paths(inputs, output_dir)
    settings = json.dumps(
        {
            "input_dir": str(input_dir.resolve()),
            "batch_size": batch_size,
            "resize_to": resize_to,
            "seed": seed,
            "inference": task.inference,
            "source": dict(source or {}),
        },
        sort_keys=True,
    )
    done = _outputs_to_keep(targets, output_dir, settings, overwrite)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = PredictionSummary(output_dir)
    rule = size_rule(task.translation_network())

    groups: dict[Size, list[tuple[Path, Fit]]] = defaultdict(list)
    for path in inputs:
        try:
            width, height = image_size(path)
        except DataError as err:
            _skip(summary.skipped, path, err)
            continue
        fit = fit_size((height, width), rule, resize_to)
        groups[fit.working].append((path, fit))
    chunks = [
        members[start : start + batch_size]
        for members in groups.values()
        for start in range(0, len(members), batch_size)
    ]

    with tqdm(total=sum(len(c) for c in chunks), unit="img") as progress:
        for number, chunk in enumerate(chunks):
            if all(targets[path] in done for path, _ in chunk):
                summary.kept += [targets[path] for path, _ in chunk]
            else:
                chunk_seed = None if seed is None else seed + number
                with repeatable_noise(chunk_seed, task.device):
                    _translate_chunk(task, chunk, targets, summary, settings)
            progress.update(len(chunk))
    return summary


def _skip(skipped: list[tuple[Path, str]], path: Path, err: Exception) -> None:
    log.warning("skipping %s: %s", path.name, err)
    skipped.append((path, str(err)))


def _translate_chunk(
    task: Translator,
    chunk: list[tuple[Path, Fit]],
    targets: dict[Path, Path],
    summary: PredictionSummary,
    settings: str,
) -> None:
    readable, arrays = [], []
    channels = (task.run_config or {}).get("model", {}).get("in_channels", 3)
    for path, fit in chunk:
        try:
            arrays.append(fit.apply(read_image(path, channels)))
        except DataError as err:  # a header that reads but pixel data that does not
            _skip(summary.skipped, path, err)
            continue
        readable.append((path, fit))
    if not readable:
        return
    try:
        outputs = task.generate(to_signed_tensor(arrays).to(task.device))
    except (RuntimeError, ValueError) as err:
        # The images of a chunk share their size, which is what such failures depend on.
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        for path, fit in readable:
            h, w = fit.original
            _skip(summary.untranslatable, path, ValueError(f"{h}x{w}: {reason}"))
        return
    for (path, fit), output in zip(readable, to_uint8(outputs), strict=True):
        image = np.ascontiguousarray(fit.undo(output.permute(1, 2, 0).numpy()))
        summary.written.append(_save_whole(image, targets[path], settings))


def _save_whole(image: np.ndarray, path: Path, settings: str) -> Path:
    """Write the PNG, with ``settings``, under a temporary name first: an interrupted run
    leaves no truncated output that a rerun would take for a finished one."""
    info = PngInfo()
    info.add_text(SETTINGS_KEY, settings)
    partial = path.with_name(f".{path.stem}.partial.png")
    Image.fromarray(image).save(partial, pnginfo=info)
    partial.replace(path)
    return path


def run_prediction(cfg: DictConfig) -> PredictionSummary:
    """Translate ``cfg.input_dir`` as the ``predict`` config says."""
    for key in ("input_dir", "output_dir"):
        if not cfg.get(key):
            raise ConfigError(f"{key} is not set; usage: {USAGE}")
    task = load_translator(cfg, USAGE, resolve_device(cfg.device))
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
    model = cfg.get("model")
    return predict_folder(
        task,
        cfg.input_dir,
        cfg.output_dir,
        batch_size=cfg.batch_size,
        resize_to=resize_to,
        overwrite=cfg.overwrite,
        seed=cfg.seed,
        source={
            "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
            "direction": cfg.get("direction"),
            "model": None if model is None else OmegaConf.to_container(model, resolve=True),
        },
    )
