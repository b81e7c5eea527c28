"""Checkpoints kept every N epochs, beside the best and the last."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint


class PeriodicCheckpoint(ModelCheckpoint):
    """Keeps the checkpoint of every ``every_n_epochs``-th epoch (``epoch004.ckpt``,
    ``epoch009.ckpt``, ... for 5, as the reference code's ``--save_epoch_freq 5``), to score a
    run along the way; ``every_n_epochs=0`` keeps none. ``save_weights_only``: without the
    optimizers' state (a third of the size with Adam's two moments per weight), as the
    reference keeps its epoch files; enough for evaluate, predict and export, not to resume.

    Lightning's ``ModelCheckpoint`` with no monitored metric and no limit on the files kept,
    as a class of its own: Lightning keys a callback's state in a checkpoint by its class and
    settings, and with ``every_n_epochs=1`` those settings are the ones of the callback that
    writes ``last.ckpt``; two plain ``ModelCheckpoint``s would then stop the Trainer at start.
    """

    def __init__(
        self, dirpath: str | Path, every_n_epochs: int = 0, save_weights_only: bool = True
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename="epoch{epoch:03d}",
            monitor=None,
            save_top_k=-1,
            every_n_epochs=every_n_epochs,
            save_weights_only=save_weights_only,
            save_last=False,
            auto_insert_metric_name=False,
        )
