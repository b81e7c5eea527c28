"""Lightning callbacks of pix2pix_lit."""

from pix2pix_lit.callbacks.elapsed import ElapsedTime
from pix2pix_lit.callbacks.emergency import EmergencyCheckpoint
from pix2pix_lit.callbacks.image_grid import ImageGridCallback
from pix2pix_lit.callbacks.performance import PerformanceCallback
from pix2pix_lit.callbacks.periodic import PeriodicCheckpoint
from pix2pix_lit.callbacks.throughput import ThroughputCallback

__all__ = [
    "ElapsedTime",
    "EmergencyCheckpoint",
    "ImageGridCallback",
    "PerformanceCallback",
    "PeriodicCheckpoint",
    "ThroughputCallback",
]
