"""Generators: output shapes and range, U-Net dropout and skips, U-GAT-IT CAM outputs, errors."""

from collections.abc import Callable

import pytest
import torch
from torch import nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks import ResnetGenerator, UGATITGenerator, UnetBlock, UnetGenerator


@pytest.fixture(scope="module")
def unet256() -> UnetGenerator:
    return UnetGenerator()


@pytest.mark.parametrize(
    ("build", "size"),
    [
        pytest.param(lambda: UnetGenerator(num_downs=7), 128, id="unet128"),
        pytest.param(lambda: UnetGenerator(skip_connections=False), 256, id="encdec256"),
        pytest.param(lambda: ResnetGenerator(n_blocks=9), 256, id="resnet9"),
        pytest.param(lambda: ResnetGenerator(n_blocks=6), 256, id="resnet6"),
        pytest.param(lambda: UGATITGenerator(light=True), 256, id="ugatit_light"),
        # The full model's MLP grows with img_size², so its forward is tested small.
        pytest.param(lambda: UGATITGenerator(img_size=64), 64, id="ugatit_full64"),
    ],
)
def test_generator_output_shape_and_range(build: Callable[[], nn.Module], size: int) -> None:
    net = build()
    with torch.no_grad():
        y = net(torch.randn(1, 3, size, size))
    assert y.shape == (1, 3, size, size)
    assert y.abs().max() <= 1.0


def test_unet256_output_shape(unet256: UnetGenerator) -> None:
    with torch.no_grad():
        y = unet256(torch.randn(1, 3, 256, 256))
    assert y.shape == (1, 3, 256, 256)


def test_generator_channels_follow_arguments() -> None:
    with torch.no_grad():
        y = UnetGenerator(in_channels=1, out_channels=2, num_downs=5, ngf=8)(
            torch.randn(2, 1, 32, 32)
        )
    assert y.shape == (2, 2, 32, 32)


def test_unet256_has_dropout_in_exactly_three_decoder_blocks(unet256: UnetGenerator) -> None:
    blocks = [m for m in unet256.modules() if isinstance(m, UnetBlock)]
    with_dropout = [b for b in blocks if any(isinstance(m, nn.Dropout) for m in b.up)]
    assert len(blocks) == 8
    assert len(with_dropout) == 3
    assert all(b.up[1].in_channels == 2 * 512 and b.up[1].out_channels == 512 for b in with_dropout)


def test_unet_without_dropout_has_none() -> None:
    net = UnetGenerator(num_downs=6, ngf=8, use_dropout=False)
    assert not any(isinstance(m, nn.Dropout) for m in net.modules())


def test_encdec_has_no_skip_connections() -> None:
    net = UnetGenerator(ngf=8, skip_connections=False)
    blocks = [m for m in net.modules() if isinstance(m, UnetBlock)]
    for block in blocks:
        down_conv = next(m for m in block.down if isinstance(m, nn.Conv2d))
        # The up-conv reads only the inner level's output, never a concatenation with its input.
        assert block.up[1].in_channels == down_conv.out_channels
    middle = blocks[1]
    with torch.no_grad():
        assert middle(torch.randn(1, 8, 128, 128)).shape == (1, 8, 128, 128)


def test_ugatit_forward_with_cam_shapes() -> None:
    net = UGATITGenerator(ngf=8, n_blocks=2, img_size=32)
    with torch.no_grad():
        image, cam_logit, heatmap = net.forward_with_cam(torch.randn(2, 3, 32, 32))
    assert image.shape == (2, 3, 32, 32)
    assert cam_logit.shape == (2, 2)
    assert heatmap.shape == (2, 1, 8, 8)


def test_ugatit_light_accepts_non_square_input() -> None:
    net = UGATITGenerator(ngf=8, n_blocks=1, img_size=256, light=True)
    with torch.no_grad():
        assert net(torch.randn(1, 3, 32, 48)).shape == (1, 3, 32, 48)


# --------------------------------------------------------------------------- user errors


def test_unknown_padding_type_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"padding_type='circular'.*'reflect'"):
        ResnetGenerator(ngf=8, n_blocks=1, padding_type="circular")


def test_unet_rejects_input_size_not_divisible_by_two_to_num_downs() -> None:
    net = UnetGenerator(num_downs=6, ngf=8)
    with pytest.raises(ConfigError, match=r"num_downs=6.*divisible by 64.*got 96x96"):
        net(torch.randn(1, 3, 96, 96))


def test_unet_rejects_too_few_levels() -> None:
    with pytest.raises(ConfigError, match="num_downs=4"):
        UnetGenerator(num_downs=4)


def test_full_ugatit_rejects_input_of_other_size() -> None:
    net = UGATITGenerator(ngf=8, n_blocks=1, img_size=32)
    with pytest.raises(ConfigError, match=r"img_size=32.*got 64x64"):
        net(torch.randn(1, 3, 64, 64))
