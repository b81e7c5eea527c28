"""The model and discriminator Hydra configs: all exist and instantiate the expected network."""

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

import pix2pix_lit.config  # noqa: F401  (registers the config resolvers)
from pix2pix_lit.networks import (
    DigitClassifier,
    DigitDecoder,
    FCNSegmenter,
    GlobalLocalDiscriminator,
    MultiscaleDiscriminator,
    PatchDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UGATITGenerator,
    UnetGenerator,
)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


EXPECTED_CONFIGS = {
    "model": {
        "unet256": UnetGenerator,
        "unet128": UnetGenerator,
        "encdec256": UnetGenerator,
        "resnet9": ResnetGenerator,
        "resnet6": ResnetGenerator,
        "ugatit": UGATITGenerator,
        "ugatit_light": UGATITGenerator,
        "fcn8s_small": FCNSegmenter,
        "digit_classifier": DigitClassifier,
        "dtn_decoder": DigitDecoder,
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


# Partial configs are completed by their task (the DTN's D: tests/test_dtn.py).
CONFIG_FILES = [
    path
    for group in ("model", "discriminator")
    for path in sorted((CONF_DIR / group).glob("*.yaml"))
    if not OmegaConf.load(path).get("_partial_")
]


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
