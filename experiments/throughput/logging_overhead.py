"""Host time that logging the four pix2pix losses adds to a training step.

A trivial task (a 2x2 linear layer, 2,000 batches of one sample, no optimizer work) isolates
Lightning's bookkeeping; each row times one epoch of ``Trainer.fit`` and reports µs per step:

- ``no logging``: the loop alone;
- ``self.log_dict per step``: the four losses with ``on_step=True, on_epoch=True`` every step
  (what ``TranslationTask.log_losses`` did before);
- ``TranslationTask.log_losses``: device-side running sums, ``self.log`` only on the steps
  the loggers write (``log_every_n_steps=50``) and once per epoch.

Run: ``python experiments/throughput/logging_overhead.py`` (CPU is enough: it is host time).
"""

from __future__ import annotations

import time

import lightning as L
import torch
from torch import nn

from pix2pix_lit.tasks.base import TranslationTask

STEPS = 2000
LOSSES = ("G_GAN", "G_L1", "D_real", "D_fake")


class LoggingOnly(TranslationTask):
    def __init__(self, mode: str) -> None:
        super().__init__(lambda p: torch.optim.SGD(p, 0.1), lambda p: torch.optim.SGD(p, 0.1))
        self.layer = nn.Linear(2, 2)
        self.mode = mode

    def generator_parameters(self):
        return self.layer.parameters()

    def discriminator_parameters(self):
        return self.layer.parameters()

    def training_step(self, batch, batch_idx):
        logs = {name: torch.rand(()) for name in LOSSES}
        if self.mode == "self.log_dict per step":
            self.log_dict(
                {f"train/{k}": v for k, v in logs.items()},
                on_step=True,
                on_epoch=True,
                batch_size=1,
            )
        elif self.mode == "TranslationTask.log_losses":
            self.log_losses(logs, batch_size=1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(STEPS, 2), batch_size=1)


def main() -> None:
    print("| logging | µs per step |\n|---|---|")
    for mode in ("no logging", "self.log_dict per step", "TranslationTask.log_losses"):
        trainer = L.Trainer(
            max_epochs=1,
            logger=False,
            enable_progress_bar=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            log_every_n_steps=50,
        )
        start = time.perf_counter()
        trainer.fit(LoggingOnly(mode))
        print(f"| {mode} | {(time.perf_counter() - start) / STEPS * 1e6:.0f} |")


if __name__ == "__main__":
    main()
