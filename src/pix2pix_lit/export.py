"""Export a generator: ``python -m pix2pix_lit.export ckpt_path=... format=onnx|torchscript|reference``.

Composes ``conf/export.yaml``; the work is done by :mod:`pix2pix_lit.inference.export`. Writes
``generator.onnx`` / ``generator.pt`` / ``latest_net_G.pth`` into the run folder unless
``output`` is given.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pix2pix_lit.cli import exits_on_user_error
from pix2pix_lit.config import config_dir
from pix2pix_lit.inference.export import run_export


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="export")
@exits_on_user_error
def main(cfg: DictConfig) -> None:
    run_export(cfg, default_dir=cfg.paths.output_dir)


if __name__ == "__main__":
    main()
