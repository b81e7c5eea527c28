"""Translate a folder: ``python -m pix2pix_lit.predict ckpt_path=... input_dir=... [overrides]``.

Composes ``conf/predict.yaml``; the work is done by :mod:`pix2pix_lit.prediction`. Prints a
one-line summary (written and skipped images) at the end.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from pix2pix_lit.config import config_dir
from pix2pix_lit.errors import UserError
from pix2pix_lit.prediction import run_prediction

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="predict")
def main(cfg: DictConfig) -> None:
    try:
        summary = run_prediction(cfg)
    except UserError as err:
        log.error("%s", err)
        sys.exit(f"error: {err}")
    print(summary)


if __name__ == "__main__":
    main()
