"""Building blocks shared by the networks: norm layers and weight initialisation, and their errors."""

import pytest
import torch
from torch import nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks import (
    PatchDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    add_spectral_norm,
    get_norm_layer,
    init_weights,
)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_norm_variants_build_and_run(norm: str) -> None:
    x = torch.randn(2, 3, 32, 32)
    nets = [
        UnetGenerator(num_downs=5, ngf=8, norm=norm),
        ResnetGenerator(ngf=8, n_blocks=1, norm=norm),
        PatchDiscriminator(3, ndf=8, norm=norm),
        PixelDiscriminator(3, ndf=8, norm=norm),
    ]
    for net in nets:
        with torch.no_grad():
            net(x)
        has_batch_norm = any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
        assert has_batch_norm == (norm == "batch")


# --------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize(
    ("init_type", "expected_std"),
    [
        ("normal", 0.02),
        ("xavier", 0.02 * (2 / (64 * 9 + 64 * 9)) ** 0.5),
        ("kaiming", (2 / (64 * 9)) ** 0.5),
    ],
)
def test_init_weight_std(init_type: str, expected_std: float) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64))
    init_weights(net, init_type, gain=0.02)
    assert net[0].weight.std().item() == pytest.approx(expected_std, rel=0.05)
    assert torch.all(net[0].bias == 0)
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.all(net[1].bias == 0)


def test_orthogonal_init_scales_orthonormal_columns_by_gain() -> None:
    layer = nn.Linear(64, 128)
    init_weights(layer, "orthogonal", gain=0.5)
    torch.testing.assert_close(layer.weight.T @ layer.weight, 0.25 * torch.eye(64))


def test_init_refuses_spectrally_normalised_layers() -> None:
    with pytest.raises(ValueError, match="before add_spectral_norm"):
        init_weights(add_spectral_norm(nn.Conv2d(3, 3, 3)))


# --------------------------------------------------------------------------- user errors


def test_unknown_norm_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"norm='group'.*'batch', 'instance', 'none'"):
        get_norm_layer("group")
    with pytest.raises(ConfigError, match="norm='group'"):
        UnetGenerator(num_downs=5, ngf=8, norm="group")


def test_unknown_init_type_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"init_type='he'.*'normal'"):
        PatchDiscriminator(ndf=8, init_type="he")
