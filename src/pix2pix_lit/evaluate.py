"""Evaluate a checkpoint: ``python -m pix2pix_lit.evaluate ckpt_path=<file.ckpt> [overrides]``.

Composes ``conf/evaluate.yaml``; the work is done by :mod:`pix2pix_lit.inference.evaluation`. Writes
``images/``, ``metrics.json`` and ``index.html`` into the run folder (or ``output_dir``).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pix2pix_lit.cli import exits_on_user_error
from pix2pix_lit.config import config_dir
from pix2pix_lit.inference.evaluation import run_evaluation


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="evaluate")
@exits_on_user_error
def main(cfg: DictConfig) -> None:
    run_evaluation(cfg)


if __name__ == "__main__":
    main()
