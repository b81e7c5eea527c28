"""pix2pix_lit: image-to-image translation with conditional GANs on Lightning and Hydra."""

__version__ = "0.1.0"
