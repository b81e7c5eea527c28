"""pix2pix_lit: image-to-image translation with conditional GANs on Lightning and Hydra.

Importing the package registers the resolvers its configs use, so Hydra's compose API
works from a notebook or a script without importing anything else first.
"""

import os

# albumentations (2.0.x) asks PyPI for a newer release on every import unless this is set:
# 70 ms where PyPI answers, 2 s per process (each spawned data-loader worker included) where
# a firewall drops the request, and a warning on every offline node. Set before any module
# of the package imports it; a user's own setting wins.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from pix2pix_lit.config import config_dir, register_resolvers

__version__ = "0.1.0"
__all__ = ["config_dir", "register_resolvers"]

register_resolvers()
