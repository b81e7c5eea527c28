"""Evaluate a checkpoint: ``python -m pix2pix_lit.evaluate ckpt_path=<file.ckpt> [overrides]``.

Composes ``conf/evaluate.yaml``; the work is done by :mod:`pix2pix_lit.evaluation`. Writes
``images/``, ``metrics.json`` and ``index.html`` into the run folder (or ``output_dir``).
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from pix2pix_lit.config import config_dir
from pix2pix_lit.errors import UserError
from pix2pix_lit.evaluation import run_evaluation

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        run_evaluation(cfg)
    except UserError as err:
        log.error("%s", err)
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
