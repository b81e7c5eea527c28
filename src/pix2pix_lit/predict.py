"""Translate a folder: ``python -m pix2pix_lit.predict ckpt_path=... input_dir=... [overrides]``.

Composes ``conf/predict.yaml``; the work is done by :mod:`pix2pix_lit.inference.prediction`. Prints a
one-line summary (written and skipped images) at the end.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pix2pix_lit.cli import exits_on_user_error
from pix2pix_lit.config import config_dir
from pix2pix_lit.inference.prediction import run_prediction


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="predict")
@exits_on_user_error
def main(cfg: DictConfig) -> None:
    print(run_prediction(cfg))


if __name__ == "__main__":
    main()
