"""The ``evaluate`` command: score a trained generator on a data split.

:func:`run_evaluation` turns the ``evaluate`` config into the pieces (checkpoint, data,
palette, FID, FCN-score), has :func:`~pix2pix_lit.inference.scoring.evaluate` translate and
score the split, and writes ``metrics.json`` and ``index.html``
(:mod:`~pix2pix_lit.inference.evaluation_report`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

from pix2pix_lit.config import config_dir, instantiate
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.inference.checkpoint import load_translator, resolve_device
from pix2pix_lit.inference.evaluation_report import (
    GALLERY_FILE,
    METRICS_FILE,
    format_score,
    json_safe,
    prepare_output_dir,
    write_report,
)
from pix2pix_lit.inference.scoring import evaluate
from pix2pix_lit.metrics import DistributionScores, Palette
from pix2pix_lit.metrics.fcn_score import FCNScore, weights_sha256
from pix2pix_lit.networks import size_rule
from pix2pix_lit.tasks.base import TranslationTask
from pix2pix_lit.training.storage import write_atomically

log = logging.getLogger(__name__)

AUTO_PALETTE = "auto"
USAGE = "python -m pix2pix_lit.evaluate ckpt_path=<file.ckpt> [overrides]"


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
    segmenter_weights = weights_sha256(fcn.network) if fcn else None  # as loaded

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
        "checkpoint_epoch": task.checkpoint_epoch,
        "checkpoint_epochs_trained": task.checkpoint_epochs_trained,
        "data_root": str(datamodule.root),
        "split": datamodule.test_split,
        "direction": direction,
        "inference": task.inference,
        "seed": cfg.seed,
        "palette": palette.name if palette else None,
        # which segmenter the FCN-scores are from: segmenters retrained by one command on two
        # CPUs differ, and the digests name it once the file is gone: the file's, and its
        # weights' (the same weights retrained into another folder make another file)
        "segmenter_ckpt": str(Path(segmenter).resolve()) if segmenter else None,
        "segmenter_sha256": _sha256(segmenter) if segmenter else None,
        "segmenter_weights_sha256": segmenter_weights,
    }
    path = write_report(output_dir, result, info)
    for name, value in result.metrics.items():
        log.info("%s = %s", name, format_score(value))
    for name, reason in result.unavailable.items():
        log.info("%s unavailable: %s", name, reason)
    log.info("Wrote %s and %s", path, output_dir / GALLERY_FILE)
    return path


def _sha256(path: str | Path) -> str:
    """The SHA-256 of the file at ``path``, read in 1 MiB blocks (hashlib.file_digest needs
    Python 3.11; the package supports 3.10)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def evaluate_by_test_step(
    task: TranslationTask, datamodule: Any, output_dir: Path, ckpt_path: str
) -> Path:
    """Score a task by its own ``test_step`` over the data module's test split (the DTN:
    classifier accuracies on the source and target test sets); write ``metrics.json``."""
    accelerator = "gpu" if task.device.type == "cuda" else "cpu"
    trainer = L.Trainer(accelerator=accelerator, devices=1, logger=False, enable_progress_bar=False)
    (scores,) = trainer.test(task, datamodule=datamodule, verbose=False)
    info = {
        "ckpt_path": str(Path(ckpt_path).resolve()),
        "checkpoint_epoch": task.checkpoint_epoch,
        "checkpoint_epochs_trained": task.checkpoint_epochs_trained,
        "inference": task.inference,
    }
    metrics = {k.removeprefix("test/"): float(v) for k, v in scores.items()}
    path = output_dir / METRICS_FILE
    write_atomically(
        path, (json.dumps({**info, "metrics": json_safe(metrics)}, indent=2) + "\n").encode()
    )
    for name, value in metrics.items():
        log.info("%s = %s", name, format_score(value))
    log.info("Wrote %s", path)
    return path
