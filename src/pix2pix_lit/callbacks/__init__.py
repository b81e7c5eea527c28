"""Lightning callbacks of pix2pix_lit."""

from pix2pix_lit.callbacks.emergency import EmergencyCheckpoint
from pix2pix_lit.callbacks.image_grid import ImageGridCallback

__all__ = ["EmergencyCheckpoint", "ImageGridCallback"]
