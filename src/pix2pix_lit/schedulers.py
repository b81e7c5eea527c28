"""Learning-rate schedules, stepped once per epoch."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from pix2pix_lit.errors import ConfigError


class LinearDecayFactor:
    """Multiplier of the base learning rate after ``epoch`` completed epochs.

    pix2pix/CycleGAN's policy: constant for ``n_epochs``, then linear decay over
    ``n_epochs_decay``, with the reference implementation's rule
    ``1 − max(0, epoch + 1 − n_epochs) / (n_epochs_decay + 1)`` so the last epoch runs at
    1/(n_epochs_decay + 1) of the base rate rather than at zero. A class rather than a
    lambda so that ``LambdaLR.state_dict`` stores it and resumed runs continue the schedule.
    """

    def __init__(self, n_epochs: int, n_epochs_decay: int):
        if n_epochs < 0 or n_epochs_decay < 0:
            raise ConfigError(
                f"scheduler.n_epochs={n_epochs} and scheduler.n_epochs_decay={n_epochs_decay} "
                "must both be >= 0"
            )
        self.n_epochs = n_epochs
        self.n_epochs_decay = n_epochs_decay

    def __call__(self, epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - self.n_epochs) / float(self.n_epochs_decay + 1)


def linear_decay(optimizer: Optimizer, n_epochs: int = 100, n_epochs_decay: int = 100) -> LambdaLR:
    """The paper's schedule (``n_epochs_decay=0`` keeps the rate constant)."""
    return LambdaLR(optimizer, LinearDecayFactor(n_epochs, n_epochs_decay))
