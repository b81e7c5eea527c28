"""Parameter counts of the network zoo.

Parameter counts are those of the reference implementations (pix2pix/CycleGAN, U-GAT-IT
official PyTorch release) and are counted on the ``meta`` device, which allocates no memory,
so even the 279M-parameter U-GAT-IT generator costs nothing.
"""

from collections.abc import Callable

import pytest
import torch
from torch import nn

from pix2pix_lit.networks import (
    PatchDiscriminator,
    ResnetGenerator,
    UGATITDiscriminator,
    UGATITGenerator,
    UnetGenerator,
)


def num_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def meta_params(build: Callable[[], nn.Module]) -> int:
    with torch.device("meta"):
        return num_params(build())


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(lambda: UnetGenerator(num_downs=8), 54_413_955, id="unet256"),
        pytest.param(lambda: UnetGenerator(num_downs=7), 41_828_995, id="unet128"),
        # unet256 minus the skip halves of the up-convs' inputs: 16·Σ inner·outer over the
        # non-innermost levels = 16·(3·512·512 + 512·256 + 256·128 + 128·64 + 64·3) = 15,338,496.
        pytest.param(lambda: UnetGenerator(skip_connections=False), 39_075_459, id="encdec256"),
        pytest.param(lambda: ResnetGenerator(n_blocks=9), 11_378_179, id="resnet9"),
        pytest.param(lambda: ResnetGenerator(n_blocks=6), 7_837_699, id="resnet6"),
        pytest.param(lambda: UGATITGenerator(img_size=256), 278_959_808, id="ugatit"),
        pytest.param(lambda: UGATITGenerator(light=True), 10_589_888, id="ugatit_light"),
        pytest.param(lambda: PatchDiscriminator(6, norm="batch"), 2_768_705, id="patch70_cond"),
        pytest.param(lambda: PatchDiscriminator(3, norm="instance"), 2_764_737, id="patch70_unc"),
        pytest.param(lambda: UGATITDiscriminator(3, n_layers=7), 53_130_176, id="ugatit_global"),
        pytest.param(lambda: UGATITDiscriminator(3, n_layers=5), 3_290_560, id="ugatit_local"),
    ],
)
def test_parameter_count_matches_reference(build: Callable[[], nn.Module], expected: int) -> None:
    assert meta_params(build) == expected


def test_spectral_norm_does_not_change_parameter_count() -> None:
    plain = meta_params(lambda: PatchDiscriminator(norm="none"))
    assert meta_params(lambda: PatchDiscriminator(norm="none", spectral_norm=True)) == plain
