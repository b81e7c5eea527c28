"""Train a translation model: ``python -m pix2pix_lit.train [overrides]``.

Composes ``conf/train.yaml`` with the command-line overrides (``-m`` for sweeps) and
returns the metric named by ``optimized_metric`` so Hydra sweepers can optimise it.
"""

from __future__ import annotations

import sys

import hydra
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from pix2pix_lit.cli import exits_on_user_error
from pix2pix_lit.config import config_dir
from pix2pix_lit.launching.sweep_job import monitored_metric
from pix2pix_lit.launching.sweep_stop import job_stopped
from pix2pix_lit.training.extras import apply_extras
from pix2pix_lit.training.run import train


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
@exits_on_user_error
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg, before_training=apply_extras)
        return monitored_metric(metrics, cfg.get("optimized_metric"))
    except SIGTERMException:
        job_stopped()  # a parallel sweep's job: the rest of the sweep stops too
        sys.exit("interrupted: a resumable checkpoint was saved (see the log above)")
    finally:
        _finish_wandb()


def _finish_wandb() -> None:
    # Close the W&B run of this job so the next job of a multirun starts its own.
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


if __name__ == "__main__":
    main()
