"""A PNG grid of input | output | target for fixed validation images, every epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import default_collate

from pix2pix_lit.loggers import log_samples_table
from pix2pix_lit.utils.images import make_grid, save_png


class ImageGridCallback(L.Callback):
    """Saves ``<dirpath>/epoch_XXX.png`` and logs it to W&B / TensorBoard when present (to
    W&B also as a table of the images, see :func:`~pix2pix_lit.loggers.log_samples_table`).

    The columns come from the task's ``grid_columns`` (pix2pix: input | output | target).

    The same ``num_images`` validation images (the first of the val set) are used every
    epoch, and the generator's noise (dropout in the paper's test protocol) is drawn from
    a generator seeded with ``seed``, so grids of different epochs compare like for like.
    Runs on rank 0 only.
    """

    def __init__(
        self, dirpath: str | Path, num_images: int = 4, every_n_epochs: int = 1, seed: int = 0
    ):
        self.dirpath = Path(dirpath)
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs
        self.seed = seed
        self._batch: dict[str, Any] | None = None
        self.last_path: Path | None = None

    def _fixed_batch(self, trainer: L.Trainer) -> dict[str, Any] | None:
        if self._batch is None:
            loaders = trainer.val_dataloaders
            loader = loaders[0] if isinstance(loaders, list) else loaders
            if loader is None:
                return None
            dataset = loader.dataset
            n = min(self.num_images, len(dataset))
            samples = [dataset[i] for i in range(n)]
            # Images at native sizes (data.preprocess=none, scale_width) differ in size: a
            # grid shows those of the first one's size.
            shape = _image_shapes(samples[0])
            self._batch = default_collate([s for s in samples if _image_shapes(s) == shape])
        return self._batch

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        batch = self._fixed_batch(trainer)
        if batch is None:
            return
        on_device = {
            k: v.to(pl_module.device) if torch.is_tensor(v) else v for k, v in batch.items()
        }
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            columns = pl_module.grid_columns(on_device)
        grid = make_grid(list(columns.values()))
        self.last_path = save_png(grid, self.dirpath / f"epoch_{trainer.current_epoch:03d}.png")
        caption = " | ".join(columns)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/samples", [grid], step=trainer.global_step, caption=[caption])
                log_samples_table(logger, columns, trainer.current_epoch, trainer.global_step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(
                    "val/samples", grid, trainer.global_step, dataformats="HWC"
                )


def _image_shapes(sample: dict[str, Any]) -> list[tuple[int, ...]]:
    """The shapes of a sample's tensors (whatever a task names its images)."""
    return [tuple(v.shape) for v in sample.values() if torch.is_tensor(v)]
