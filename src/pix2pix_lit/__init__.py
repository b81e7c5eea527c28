"""pix2pix_lit: image-to-image translation with conditional GANs on Lightning and Hydra."""

import os

# albumentations (2.0.x) asks PyPI for a newer release on every import unless this is set:
# 70 ms where PyPI answers, 2 s per process (each spawned data-loader worker included) where
# a firewall drops the request, and a warning on every offline node. Set before any module
# of the package imports it; a user's own setting wins.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
