"""Score a trained generator on a data split: images, ``metrics.json`` and an HTML gallery.

:func:`run_evaluation` turns the ``evaluate`` config into the pieces (checkpoint, data, palette,
FID) and :func:`evaluate` runs the generator over the split with a fixed seed, writing
``images/<name>_{input,output,target}.png`` and collecting per-image scores; :func:`write_report`
writes ``metrics.json`` (split averages and per-image scores) and ``index.html``.
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from pix2pix_lit.config import config_dir, instantiate
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.inference import gallery
from pix2pix_lit.inference.checkpoint import Translator, load_translator, resolve_device
from pix2pix_lit.inference.protocol import repeatable_noise
from pix2pix_lit.metrics import (
    PSNR_CAP_DB,
    DistributionScores,
    Palette,
    class_indices,
    confusion_matrix,
    image_scores,
    label_scores,
    per_class_scores,
)
from pix2pix_lit.metrics.fcn_score import FCNScore
from pix2pix_lit.networks import size_rule
from pix2pix_lit.tasks.base import TranslationTask
from pix2pix_lit.utils.images import save_png, to_uint8

log = logging.getLogger(__name__)

IMAGES_DIR = "images"
METRICS_FILE = "metrics.json"
GALLERY_FILE = "index.html"
ROLES: tuple[str, ...] = ("input", "output", "target")
AUTO_PALETTE = "auto"
USAGE = "python -m pix2pix_lit.evaluate ckpt_path=<file.ckpt> [overrides]"


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


# -- configuration -----------------------------------------------------------------------


def data_config(checkpoint_data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The data config to evaluate on, without the ``split`` key (it sets ``test_split``).

    ``overrides`` is the ``data`` node of the evaluate config; null values mean "not set".
    With a ``_target_`` (a ``data=<option>`` group was chosen) it replaces the checkpoint's
    data config, otherwise its keys are set on top of it.
    """
    chosen = {k: v for k, v in overrides.items() if v is not None}
    split = chosen.pop("split", None)
    config = chosen if "_target_" in chosen else {**checkpoint_data, **chosen}
    if split is not None:
        config["test_split"] = split
    return config


def load_palette(name: str) -> Palette:
    """The palette ``conf/palette/<name>.yaml``."""
    path = config_dir() / "palette" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"palette={name} has no {path}; choose one of {', '.join(known)}")
    return Palette.from_config(OmegaConf.to_container(OmegaConf.load(path)))


def evaluated_direction(data_direction: str, generator_direction: str) -> str:
    """The translation evaluated, in the data's terms: ``direction=BtoA`` picks the generator
    of an unpaired task that maps the data's B side to its A side (CycleGAN's F)."""
    if generator_direction == "AtoB":
        return data_direction
    return "AtoB" if data_direction == "BtoA" else "BtoA"


def is_facades_labels(data: Mapping[str, Any]) -> bool:
    """Whether the data is CMP Facades translated photo → labels (``direction=AtoB``)."""
    return "facades" in Path(str(data.get("root", ""))).name.lower() and (
        data.get("direction", "AtoB") == "AtoB"
    )


def resolve_palette(palette: Mapping[str, Any], data: Mapping[str, Any]) -> Palette | None:
    """The palette to score label maps with, or None for no label metrics.

    ``palette.name == "auto"`` picks the facades palette for facades photo → labels data.
    """
    if palette.get("name") == AUTO_PALETTE:
        return load_palette("facades") if is_facades_labels(data) else None
    if not palette.get("classes"):
        return None
    return Palette.from_config(palette)


# -- running the generator ---------------------------------------------------------------


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
        name: {k: _finite_or_none(float(v[i])) for k, v in scores.items()}
        for i, name in enumerate(palette.names)
    }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


# -- outputs -----------------------------------------------------------------------------


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
        raise ConfigError(
            f"output_dir={output_dir} already holds evaluation outputs "
            f"({', '.join(sorted({p.relative_to(output_dir).parts[0] for p in previous}))}); "
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
        "metrics": _json_safe(evaluation.metrics),
        "unavailable": dict(evaluation.unavailable),
        "per_class": evaluation.per_class,
        "per_image": [_json_safe(r) for r in evaluation.per_image],
    }
    path = output_dir / METRICS_FILE
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (output_dir / GALLERY_FILE).write_text(gallery_html(evaluation, info))
    return path


def _json_safe(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _finite_or_none(v) if isinstance(v, float) else v for k, v in record.items()}


def _format(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"


def gallery_html(evaluation: Evaluation, info: Mapping[str, Any]) -> str:
    """A self-contained page: one row per image (input | output | target, name, scores),
    sortable and filterable by score (:mod:`pix2pix_lit.inference.gallery`).

    Image links are relative (``images/...``), so the page opens from disk without a server.
    """
    esc = html.escape
    summary = ", ".join(f"{esc(k)} {_format(v)}" for k, v in evaluation.metrics.items())
    details = ", ".join(f"{esc(str(k))}={esc(str(v))}" for k, v in info.items())
    rows = []
    for record in evaluation.per_image:
        name = record["name"]
        cells = "".join(
            f'<td><img src="{IMAGES_DIR}/{quote(f"{name}_{role}.png")}" alt="{esc(role)}"></td>'
            for role in ROLES
        )
        scores = "<br>".join(
            f"{esc(k)} {_format(v)}" for k, v in record.items() if isinstance(v, float)
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


# -- the evaluate command ----------------------------------------------------------------


def run_evaluation(cfg: DictConfig) -> Path:
    """Evaluate ``cfg.ckpt_path`` as the ``evaluate`` config says; return ``metrics.json``."""
    task = load_translator(cfg, USAGE, resolve_device(cfg.device))
    output_dir = prepare_output_dir(cfg.output_dir, cfg.overwrite)
    stored_data = (task.run_config or {}).get("data", {})
    data = data_config(stored_data, OmegaConf.to_container(cfg.data, resolve=True))
    if "_target_" not in data:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} stores no data config; choose one with data=<option> "
            "(e.g. data=facades or data=folder data.root=<folder>)"
        )
    direction = evaluated_direction(
        data.get("direction", "AtoB"), getattr(task, "direction", "AtoB")
    )
    palette = resolve_palette(OmegaConf.to_container(cfg.palette), {**data, "direction": direction})
    # Built before the generator runs, so a missing FID extra fails fast.
    distribution = DistributionScores(weights_path=cfg.fid_weights) if cfg.fid else None
    segmenter = cfg.get("segmenter_ckpt")
    fcn = FCNScore.from_checkpoint(segmenter, task.device) if segmenter else None

    datamodule = instantiate(OmegaConf.create(data))
    if getattr(datamodule, "size_multiple", 1) is None:
        # What a Trainer gives it in validation: the generator's own size rule, to which
        # preprocess=none|scale_width bring every image (data.size_multiple overrides it).
        datamodule.size_multiple = size_rule(task.translation_network()).multiple
    datamodule.prepare_data()
    if not getattr(task, "scores_image_pairs", True):  # a reference generator file scores pairs
        return evaluate_by_test_step(task, datamodule, output_dir, cfg.ckpt_path)
    split_dir = Path(datamodule.root) / datamodule.test_split
    if not datamodule.has_split(datamodule.test_split):
        found = sorted(p.name for p in Path(datamodule.root).iterdir() if p.is_dir())
        raise DataError(
            f"data.split={datamodule.test_split}: {split_dir} does not exist; "
            f"choose one of the split folders of data.root={datamodule.root}: {', '.join(found)}"
        )
    datamodule.setup("test")
    log.info(
        "Evaluating %s on %s (%d images), inference=%s, seed=%s, palette=%s",
        cfg.ckpt_path,
        split_dir,
        len(datamodule.test_set),
        task.inference,
        cfg.seed,
        palette.name if palette else None,
    )
    result = evaluate(
        task,
        datamodule.test_dataloader(),
        output_dir,
        seed=cfg.seed,
        palette=palette,
        distribution=distribution,
        total=len(datamodule.test_set),
        fcn=fcn,
    )
    info = {
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "data_root": str(datamodule.root),
        "split": datamodule.test_split,
        "direction": direction,
        "inference": task.inference,
        "seed": cfg.seed,
        "palette": palette.name if palette else None,
    }
    path = write_report(output_dir, result, info)
    for name, value in result.metrics.items():
        log.info("%s = %s", name, _format(value))
    for name, reason in result.unavailable.items():
        log.info("%s unavailable: %s", name, reason)
    log.info("Wrote %s and %s", path, output_dir / GALLERY_FILE)
    return path


def evaluate_by_test_step(
    task: TranslationTask, datamodule: Any, output_dir: Path, ckpt_path: str
) -> Path:
    """Score a task by its own ``test_step`` over the data module's test split (the DTN:
    classifier accuracies on the source and target test sets); write ``metrics.json``."""
    accelerator = "gpu" if task.device.type == "cuda" else "cpu"
    trainer = L.Trainer(accelerator=accelerator, devices=1, logger=False, enable_progress_bar=False)
    (scores,) = trainer.test(task, datamodule=datamodule, verbose=False)
    info = {"ckpt_path": str(Path(ckpt_path).resolve()), "inference": task.inference}
    metrics = {k.removeprefix("test/"): float(v) for k, v in scores.items()}
    path = output_dir / METRICS_FILE
    path.write_text(json.dumps({**info, "metrics": _json_safe(metrics)}, indent=2) + "\n")
    for name, value in metrics.items():
        log.info("%s = %s", name, _format(value))
    log.info("Wrote %s", path)
    return path
