"""Shapes, parameter counts, receptive fields and errors of the network zoo.

Parameter counts are those of the reference implementations (pix2pix/CycleGAN, U-GAT-IT
official PyTorch release) and are counted on the ``meta`` device, which allocates no memory,
so even the 279M-parameter U-GAT-IT generator costs nothing. Forward passes use real nets.
"""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.nn.utils import parametrize

import pix2pix_lit.config  # noqa: F401  (registers the config resolvers)
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks import (
    LIN,
    AdaLIN,
    GlobalLocalDiscriminator,
    MultiscaleDiscriminator,
    PatchDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UGATITDiscriminator,
    UGATITGenerator,
    UnetBlock,
    UnetGenerator,
    add_spectral_norm,
    clip_rho_,
    conv_bias,
    get_norm_layer,
    init_weights,
    receptive_field,
)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def num_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def meta_params(build: Callable[[], nn.Module]) -> int:
    with torch.device("meta"):
        return num_params(build())


@pytest.fixture(scope="module")
def unet256() -> UnetGenerator:
    return UnetGenerator()


# --------------------------------------------------------------------------- parameter counts


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


# --------------------------------------------------------------------------- generators


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


# --------------------------------------------------------------------------- discriminators


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


# --------------------------------------------------------------------------- LIN / AdaLIN


def test_lin_initial_values() -> None:
    assert torch.all(AdaLIN(4).rho == 0.9)
    lin = LIN(4)
    assert torch.all(lin.rho == 0) and torch.all(lin.gamma == 1) and torch.all(lin.beta == 0)


def test_adalin_interpolates_instance_and_layer_norm() -> None:
    x = torch.randn(2, 4, 8, 8) * 3 + 1
    norm = AdaLIN(4)
    gamma, beta = torch.ones(2, 4), torch.zeros(2, 4)
    with torch.no_grad():
        norm.rho.fill_(1.0)
        torch.testing.assert_close(norm(x, gamma, beta), F.instance_norm(x))
        norm.rho.fill_(0.0)
        torch.testing.assert_close(norm(x, gamma, beta), F.layer_norm(x, x.shape[1:]))
        torch.testing.assert_close(
            norm(x, 2 * gamma, beta + 1), 2 * F.layer_norm(x, x.shape[1:]) + 1
        )


def test_clip_rho_puts_rho_back_into_unit_interval() -> None:
    net = UGATITGenerator(ngf=8, n_blocks=1, img_size=16, light=True)
    rhos = [m.rho for m in net.modules() if isinstance(m, AdaLIN | LIN)]
    assert len(rhos) == 4
    with torch.no_grad():
        rhos[0].fill_(-0.5)
        rhos[1].fill_(1.7)
        rhos[2].fill_(0.3)
    net.clip_rho()
    assert torch.all(rhos[0] == 0) and torch.all(rhos[1] == 1) and torch.all(rhos[2] == 0.3)
    with torch.no_grad():
        rhos[3].fill_(2.0)
    clip_rho_(net)
    assert torch.all(rhos[3] == 1)


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


# --------------------------------------------------------------------------- Hydra configs

EXPECTED_CONFIGS = {
    "model": {
        "unet256": UnetGenerator,
        "unet128": UnetGenerator,
        "encdec256": UnetGenerator,
        "resnet9": ResnetGenerator,
        "resnet6": ResnetGenerator,
        "ugatit": UGATITGenerator,
        "ugatit_light": UGATITGenerator,
    },
    "discriminator": {
        "patch70": PatchDiscriminator,
        "patch16": PatchDiscriminator,
        "image286": PatchDiscriminator,
        "pixel": PixelDiscriminator,
        "multiscale": MultiscaleDiscriminator,
        "ugatit": GlobalLocalDiscriminator,
    },
}
CONFIG_FILES = sorted((CONF_DIR / "model").glob("*.yaml")) + sorted(
    (CONF_DIR / "discriminator").glob("*.yaml")
)


def test_all_expected_configs_exist() -> None:
    for group, names in EXPECTED_CONFIGS.items():
        for name in names:
            assert (CONF_DIR / group / f"{name}.yaml").is_file()


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_instantiates(path: Path) -> None:
    # The U-GAT-IT generator reads its img_size from the data config; discriminators read
    # their input channels from the loss (conditional or not) and the generator.
    cfg = OmegaConf.create(
        {
            "data": {"crop_size": 64},
            "loss": {"conditional": True},
            "model": {"in_channels": 3, "out_channels": 3},
            "node": OmegaConf.load(path),
        }
    )
    net = instantiate(cfg.node)
    expected = EXPECTED_CONFIGS.get(path.parent.name, {}).get(path.stem, nn.Module)
    assert isinstance(net, expected)
    if path.parent.name == "discriminator":
        assert cfg.node.in_channels == 6
        cfg.loss.conditional = False
        assert cfg.node.in_channels == 3
