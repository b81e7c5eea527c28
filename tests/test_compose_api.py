"""Hydra's compose API outside the CLI: importing the package is enough."""

from __future__ import annotations

import subprocess
import sys

# A fresh interpreter: in this one the resolvers are already registered by other imports.
SCRIPT = """
import pix2pix_lit
from hydra import compose, initialize_config_dir

with initialize_config_dir(config_dir=str(pix2pix_lit.config_dir()), version_base="1.3"):
    cfg = compose("train", overrides=["model=unet128", "loss.conditional=false"])
print(cfg.discriminator.in_channels, cfg.trainer.max_epochs)
"""


def test_configs_compose_after_importing_the_package_alone() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # an unconditional D sees the 3 output channels alone; 100 + 100 epochs
    assert result.stdout.split() == ["3", "200"]
