"""Running trained generators: the evaluate, predict and export commands' logic.

* :mod:`~pix2pix_lit.inference.protocol`: the test-time protocols (``paper`` | ``standard``)
  and repeatable dropout noise; tasks use them for validation too.
* :mod:`~pix2pix_lit.inference.checkpoint`: what every command does first: check
  ``ckpt_path``, load a pix2pix_lit checkpoint or a reference generator file, apply the
  ``inference``/``direction`` overrides.
* :mod:`~pix2pix_lit.inference.reference`: the state-dict layout of the reference
  pix2pix/CycleGAN code (``latest_net_G.pth``), both ways.
* :mod:`~pix2pix_lit.inference.evaluation`, :mod:`~pix2pix_lit.inference.prediction`,
  :mod:`~pix2pix_lit.inference.export`: one module per command (entry points:
  ``pix2pix_lit.evaluate``, ``pix2pix_lit.predict``, ``pix2pix_lit.export``).
* :mod:`~pix2pix_lit.inference.scoring`: translate a split and score every image (the core of
  ``evaluate``); :mod:`~pix2pix_lit.inference.evaluation_report`: its ``metrics.json`` and
  ``index.html``; :mod:`~pix2pix_lit.inference.gallery`: sorting and filtering of that
  ``index.html`` by per-image score.
"""

from pix2pix_lit.inference.protocol import (
    INFERENCE_MODES,
    check_inference_mode,
    inference_protocol,
    repeatable_noise,
)

__all__ = ["INFERENCE_MODES", "check_inference_mode", "inference_protocol", "repeatable_noise"]
