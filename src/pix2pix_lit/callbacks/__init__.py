"""Lightning callbacks of pix2pix_lit."""

from pix2pix_lit.callbacks.image_grid import ImageGridCallback

__all__ = ["ImageGridCallback"]
