"""Checks of a task's networks before training, on shapes alone: whether each takes the
configured input size, and which channels a network takes and returns."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from pix2pix_lit.errors import ConfigError


def check_input_size(task: nn.Module, size: int, key: str = "data.crop_size") -> None:
    """Raise :class:`ConfigError` naming ``key`` unless every network of ``task`` takes a
    ``size`` × ``size`` input (U-GAT-IT's 7-layer discriminator needs 128 px, U-Net256
    multiples of 256…), before training rather than at its first step.

    Runs each network on the ``meta`` device: shapes only, no computation, no copy.
    """
    for name, network in task.named_children():
        if not any(isinstance(m, nn.Conv2d) for m in network.modules()):
            continue  # metrics, losses
        channels = conv_channels(network)[0]
        error = _shape_error(network, channels, size)
        if error is None:
            continue
        if isinstance(error, ConfigError):
            raise error
        fits = next((s for s in (2**k for k in range(3, 13)) if s > size and
                     _shape_error(network, channels, s) is None), None)  # fmt: skip
        if fits is None:
            # no size works: not a size problem (an operation without a meta version);
            # training will show the real error
            continue
        raise ConfigError(
            f"{key}={size} is too small for the {name} ({type(network).__name__}): "
            f"{str(error).splitlines()[0]}; the smallest power of two it takes is {fits}"
        )


def conv_channels(net: nn.Module) -> tuple[int, int]:
    """(input channels of the first convolution, output channels of the last) of ``net``.

    Every network of the zoo registers its layers in the order they run, so these are the
    channels the network takes and returns.
    """
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    return convs[0].in_channels, convs[-1].out_channels


def _shape_error(network: nn.Module, channels: int, size: int) -> Exception | None:
    """The error ``network`` raises on a (1, channels, size, size) input, on the meta device."""
    tensors = {name: torch.empty_like(t, device="meta")
               for name, t in (*network.named_parameters(), *network.named_buffers())}  # fmt: skip
    try:
        functional_call(network, tensors, (torch.empty(1, channels, size, size, device="meta"),))
    except NotImplementedError:
        return None  # an operation without a meta version: nothing to say about the size
    except (RuntimeError, ValueError) as err:
        return err
    return None
