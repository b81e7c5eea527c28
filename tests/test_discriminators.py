"""Discriminators: patch sizes and receptive fields, conv biases, multiscale, U-GAT-IT's."""

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from pix2pix_lit.networks import (
    GlobalLocalDiscriminator,
    MultiscaleDiscriminator,
    PatchDiscriminator,
    PixelDiscriminator,
    UGATITDiscriminator,
    conv_bias,
    receptive_field,
)


@pytest.mark.parametrize(
    ("build", "out_size", "field"),
    [
        pytest.param(lambda: PixelDiscriminator(), 256, 1, id="pixel"),
        pytest.param(lambda: PatchDiscriminator(n_layers=1), 126, 16, id="patch16"),
        pytest.param(lambda: PatchDiscriminator(n_layers=3), 30, 70, id="patch70"),
        pytest.param(lambda: PatchDiscriminator(n_layers=5), 6, 286, id="image286"),
    ],
)
def test_patch_discriminators(build: Callable[[], nn.Module], out_size: int, field: int) -> None:
    net = build()
    assert receptive_field(net) == field
    with torch.no_grad():
        logits = net(torch.randn(1, 6, 256, 256))
    assert logits.shape == (1, 1, out_size, out_size)


def test_patch_discriminator_convs_have_bias_only_without_batch_norm() -> None:
    assert not conv_bias("batch")
    assert conv_bias("instance")
    assert conv_bias("none")
    convs = [m for m in PatchDiscriminator(norm="batch").modules() if isinstance(m, nn.Conv2d)]
    # First and last convolution are not followed by a norm.
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]


def test_multiscale_returns_features_per_scale() -> None:
    net = MultiscaleDiscriminator(ndf=8, n_layers=3, num_scales=3)
    with torch.no_grad():
        outputs = net(torch.randn(2, 6, 256, 256))
    assert len(outputs) == 3
    assert all(len(scale) == 5 for scale in outputs)
    assert [scale[-1].shape for scale in outputs] == [
        (2, 1, 30, 30),
        (2, 1, 14, 14),
        (2, 1, 6, 6),
    ]
    assert outputs[0][0].shape == (2, 8, 128, 128)


def test_multiscale_scales_are_independent_patchgans() -> None:
    net = MultiscaleDiscriminator(ndf=8, num_scales=2)
    assert len(net.scales) == 2
    assert net.scales[0].groups[0][0].weight is not net.scales[1].groups[0][0].weight
    assert receptive_field(net.scales[0]) == 70


def test_ugatit_discriminator_outputs_and_spectral_norm() -> None:
    net = UGATITDiscriminator(3, ndf=8, n_layers=5)
    assert receptive_field(net) == 70
    assert receptive_field(UGATITDiscriminator(3, ndf=8, n_layers=7)) == 286
    weighted = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert weighted and all(parametrize.is_parametrized(m, "weight") for m in weighted)
    with torch.no_grad():
        logits, cam_logit, heatmap = net(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 1, 6, 6)
    assert cam_logit.shape == (2, 2)
    assert heatmap.shape == (2, 1, 7, 7)


def test_global_local_discriminator_returns_flat_predictions() -> None:
    net = GlobalLocalDiscriminator(in_channels=6, ndf=8)
    x = torch.randn(2, 6, 256, 256)
    with torch.no_grad():
        predictions, heatmaps = net.forward_with_heatmaps(x)
        assert [p.shape for p in net(x)] == [p.shape for p in predictions]
    assert [p.shape for p in predictions] == [(2, 1, 6, 6), (2, 2), (2, 1, 30, 30), (2, 2)]
    assert [h.shape for h in heatmaps] == [(2, 1, 7, 7), (2, 1, 31, 31)]
