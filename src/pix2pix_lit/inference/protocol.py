"""How a generator runs at test time.

``paper``: as pix2pix does (Isola et al. 2017, "Optimization and inference"): dropout stays
on and batch norm normalises with the statistics of the test batch itself. ``standard``:
the usual ``eval()`` (no dropout, running statistics). Neither mode changes the stored
batch-norm running statistics, so validation never disturbs training. :func:`repeatable_noise`
makes the paper protocol's dropout draw the same noise on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from pix2pix_lit.errors import ConfigError

INFERENCE_MODES = ("paper", "standard")


def check_inference_mode(mode: str, key: str = "inference") -> str:
    if mode not in INFERENCE_MODES:
        raise ConfigError(f"{key}={mode!r} is not one of {', '.join(INFERENCE_MODES)}")
    return mode


@contextmanager
def inference_protocol(net: nn.Module, mode: str) -> Iterator[nn.Module]:
    """Put ``net`` in the given test-time mode under ``no_grad``; restore it afterwards."""
    check_inference_mode(mode)
    was_training = {m: m.training for m in net.modules()}
    tracked = {m: m.track_running_stats for m in net.modules() if isinstance(m, _BatchNorm)}
    try:
        if mode == "paper":
            net.train()
            # In train mode with track_running_stats off, batch norm uses the batch's own
            # statistics and leaves running_mean/var and num_batches_tracked untouched.
            for bn in tracked:
                bn.track_running_stats = False
        else:
            net.eval()
        with torch.no_grad():
            yield net
    finally:
        for bn, flag in tracked.items():
            bn.track_running_stats = flag
        for m, flag in was_training.items():
            m.training = flag


@contextmanager
def repeatable_noise(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's generator for the block and restore its state afterwards.

    The paper protocol draws dropout noise at test time; with a seed the same inputs give the
    same outputs on every run, and the caller's random stream is left as it was.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield
