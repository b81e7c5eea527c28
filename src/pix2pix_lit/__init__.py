"""pix2pix_lit: image-to-image translation with conditional GANs on Lightning and Hydra.

Importing the package registers the resolvers its configs use, so Hydra's compose API
works from a notebook or a script without importing anything else first.
"""

from pix2pix_lit.config import config_dir, register_resolvers

__version__ = "0.1.0"
__all__ = ["config_dir", "register_resolvers"]

register_resolvers()
