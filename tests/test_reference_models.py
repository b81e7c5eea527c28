"""Generator files of the reference pix2pix/CycleGAN code: key mapping both ways, identical
outputs, old file variants, and one-line errors for a file of another network.

``RefUnet``/``RefResnet`` rebuild the module structure of the reference's
``models/networks.py`` (junyanz/pytorch-CycleGAN-and-pix2pix) only to produce its state-dict
layout and its outputs: a U-Net level is one ``nn.Sequential`` called ``model`` holding
[down layers, inner level, up layers, dropout]; the ResNet's residual block calls its
Sequential ``conv_block``; convolutions have biases exactly when the norm is instance norm.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch import Tensor, nn

from helpers import run_main, tiny_checkpoint
from pix2pix_lit import evaluate as evaluate_cli
from pix2pix_lit import export as export_cli
from pix2pix_lit import predict as predict_cli
from pix2pix_lit.config import config_dir
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.inference.checkpoint import LoneGenerator, load_task, load_translator
from pix2pix_lit.inference.protocol import inference_protocol
from pix2pix_lit.inference.reference import from_reference, identify, to_reference
from pix2pix_lit.networks import ResnetGenerator, UGATITGenerator, UnetGenerator

# -- the reference's module structure -----------------------------------------------------


def _norm(kind: str, channels: int) -> nn.Module:
    # the current reference: batch norm affine with running statistics; instance norm neither
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class RefUnetLevel(nn.Module):
    def __init__(self, outer, inner, input_nc=None, sub=None, where="middle", norm="batch",
                 dropout=False):  # fmt: skip
        super().__init__()
        self.outermost = where == "outermost"
        bias = norm == "instance"
        down_conv = nn.Conv2d(input_nc or outer, inner, 4, 2, 1, bias=bias)
        if where == "outermost":
            layers = [down_conv, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1),
                      nn.Tanh()]  # fmt: skip
        elif where == "innermost":
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), _norm(norm, outer)]  # fmt: skip
        else:
            layers = [nn.LeakyReLU(0.2, True), down_conv, _norm(norm, inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=bias), _norm(norm, outer)]  # fmt: skip
            layers += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnet(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm="batch", dropout=True):  # fmt: skip
        super().__init__()
        level = RefUnetLevel(ngf * 8, ngf * 8, where="innermost", norm=norm)
        for _ in range(num_downs - 5):
            level = RefUnetLevel(ngf * 8, ngf * 8, sub=level, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            level = RefUnetLevel(ngf * mult, ngf * mult * 2, sub=level, norm=norm)
        self.model = RefUnetLevel(output_nc, ngf, input_nc, level, "outermost", norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class RefResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: str, dropout: bool) -> None:
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim),
                  nn.ReLU(True)]  # fmt: skip
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class RefResnet(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, n_blocks, norm="instance", dropout=False):  # fmt: skip
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), _norm(norm, ngf),
                  nn.ReLU(True)]  # fmt: skip
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=bias),
                       _norm(norm, ngf * mult * 2), nn.ReLU(True)]  # fmt: skip
        layers += [RefResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, 1, bias=bias),
                       _norm(norm, ngf * mult // 2), nn.ReLU(True)]  # fmt: skip
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and batch-norm statistics, so every entry of the mapping matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=g) * 0.2)
            else:
                tensor.fill_(7)
    return net


def outputs(net: nn.Module, x: Tensor, mode: str) -> Tensor:
    with torch.random.fork_rng(), inference_protocol(net, mode):
        torch.manual_seed(3)
        return net(x)


# (reference network, ours) pairs: pix2pix's U-Net with batch norm and dropout, CycleGAN's
# ResNet with instance norm, and the other norms/dropout for the index shifts they cause
PAIRS = {
    "unet_batch": (lambda: RefUnet(3, 3, 6, 4),
                   lambda: UnetGenerator(num_downs=6, ngf=4)),
    "unet_instance": (lambda: RefUnet(1, 3, 5, 4, norm="instance", dropout=False),
                      lambda: UnetGenerator(1, 3, num_downs=5, ngf=4, norm="instance",
                                            use_dropout=False)),
    "resnet_instance": (lambda: RefResnet(3, 3, 4, 2),
                        lambda: ResnetGenerator(ngf=4, n_blocks=2)),
    "resnet_batch_dropout": (lambda: RefResnet(3, 1, 4, 2, norm="batch", dropout=True),
                             lambda: ResnetGenerator(3, 1, ngf=4, n_blocks=2, norm="batch",
                                                     use_dropout=True)),
}  # fmt: skip


@pytest.mark.parametrize("pair", PAIRS)
def test_reference_weights_give_identical_outputs_both_ways(pair: str) -> None:
    make_ref, make_ours = PAIRS[pair]
    ref, ours = randomised(make_ref()), make_ours()
    from_reference(ref.state_dict(), ours, "latest_net_G.pth")
    x = torch.rand(2, ref_in(ref), 64, 64) * 2 - 1
    for mode in ("standard", "paper"):  # running statistics; batch statistics and dropout
        assert torch.equal(outputs(ours, x, mode), outputs(ref, x, mode)), mode
    back = make_ref()
    back.load_state_dict(to_reference(randomised(ours, seed=1)))  # strict: same keys, shapes
    assert torch.equal(outputs(back, x, "standard"), outputs(ours, x, "standard"))
    assert set(to_reference(ours)) == set(ref.state_dict())


def ref_in(ref: nn.Module) -> int:
    return next(p for p in ref.parameters() if p.dim() == 4).shape[1]


def test_old_files_load_running_statistics_of_instance_norm_dropped() -> None:
    """Files from before PyTorch 0.4 (the published models): instance norm kept running
    statistics, which the reference's loader deletes; batch norm had no num_batches_tracked.
    A file saved from nn.DataParallel prefixes every key with ``module.``."""
    ref = randomised(RefResnet(3, 3, 4, 1))
    state = dict(ref.state_dict())
    for name, module in ref.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.full((module.num_features,), 9.0)
            state[f"{name}.running_var"] = torch.full((module.num_features,), 9.0)
            state[f"{name}.num_batches_tracked"] = torch.tensor(5)
    ours = ResnetGenerator(ngf=4, n_blocks=1)
    from_reference({f"module.{k}": v for k, v in state.items()}, ours, "old.pth")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(outputs(ours, x, "standard"), outputs(ref, x, "standard"))

    unet = randomised(RefUnet(3, 3, 5, 4))
    old = {k: v for k, v in unet.state_dict().items() if not k.endswith("num_batches_tracked")}
    fresh = UnetGenerator(num_downs=5, ngf=4)
    from_reference(old, fresh, "old.pth")
    assert torch.equal(outputs(fresh, x, "standard"), outputs(unet, x, "standard"))


def test_what_a_file_looks_like() -> None:
    unet = identify(RefUnet(3, 3, 8, 4).state_dict())
    assert str(unet) == "a unet_256 generator (ngf=4, 3 -> 3 channels, batch norm)"
    assert unet.model_overrides() == "model=unet256 model.ngf=4"
    resnet = identify(RefResnet(1, 3, 64, 9).state_dict())
    assert str(resnet) == "a resnet_9blocks generator (ngf=64, 1 -> 3 channels, instance norm)"
    assert resnet.model_overrides() == "model=resnet9 model.in_channels=1"
    assert identify(RefResnet(3, 3, 64, 6).state_dict()).model_overrides() == "model=resnet6"
    assert identify(RefUnet(3, 3, 7, 64, norm="instance").state_dict()).model_overrides() == (
        "model=unet128 model.norm=instance"
    )
    patch = {"model.0.weight": torch.zeros(64, 6, 4, 4), "model.0.bias": torch.zeros(64)}
    assert "PatchGAN discriminator" in identify(patch)
    assert "no network of the reference code (its keys: epoch" in identify({"epoch": torch.ones(1)})


# -- the commands --------------------------------------------------------------------------


def saved(net: nn.Module, path: Path, zip_format: bool = True) -> Path:
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=zip_format)
    return path


def translator(ckpt: Path, option: str | None = None, **params: object) -> LoneGenerator:
    """What the commands load for ``ckpt_path=ckpt model=option model.<key>=<value>...``."""
    model = None
    if option is not None:
        model = OmegaConf.merge(OmegaConf.load(config_dir() / "model" / f"{option}.yaml"), params)
    cfg = OmegaConf.create(
        {"ckpt_path": str(ckpt), "inference": None, "direction": None, "model": model}
    )
    return load_translator(cfg, "usage")


def test_a_reference_file_of_another_network_is_one_line_naming_it(tmp_path: Path) -> None:
    resnet = saved(RefResnet(3, 3, 8, 2), tmp_path / "latest_net_G.pth", zip_format=False)
    with pytest.raises(DataError) as err:
        translator(resnet, "unet256")
    message = str(err.value)
    assert message == (
        f"ckpt_path={resnet} looks like a resnet_2blocks generator (ngf=8, 3 -> 3 channels, "
        "instance norm), not a unet_256 generator (ngf=64, 3 -> 3 channels, batch norm) as "
        "model= builds; pass model=resnet9 model.n_blocks=2 model.ngf=8"
    )
    with pytest.raises(ConfigError, match="holds weights only: it looks like a resnet_2blocks"):
        translator(resnet)
    with pytest.raises(ConfigError, match="model=UGATITGenerator: the reference .* no such"):
        translator(resnet, "ugatit_light")
    unet = saved(RefUnet(3, 3, 8, 64, norm="batch"), tmp_path / "unet.pth")
    with pytest.raises(DataError, match="looks like a unet_256 .*, not a unet_256 .*instance"):
        translator(unet, "unet256", norm="instance")
    loaded = translator(resnet, "resnet9", n_blocks=2, ngf=8)
    assert loaded.inference == "paper" and loaded.run_config["data"] == {"crop_size": 256}


def test_export_reference_then_predict_and_evaluate_with_it(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trained checkpoint exported as latest_net_G.pth loads into the reference's network
    with identical outputs, and predict/evaluate run it with model= as they run the ckpt."""
    monkeypatch.chdir(tmp_path)
    ckpt = tiny_checkpoint(tmp_path_factory)  # U-Net, num_downs=6, ngf=8
    pth = tmp_path / "latest_net_G.pth"
    assert (
        run_main(export_cli.main, f"ckpt_path={ckpt}", "format=reference", f"output={pth}") is None
    )
    generator = load_task(ckpt).translation_network()
    ref = RefUnet(3, 3, 6, 8)
    ref.load_state_dict(torch.load(pth, weights_only=True))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.equal(outputs(ref, x, "paper"), outputs(generator, x, "paper"))

    inputs = tmp_path / "in"
    inputs.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (40, 70, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(inputs / "a.png")
    model = ("model=unet256", "model.num_downs=6", "model.ngf=8")
    for name, source in (("ckpt", (f"ckpt_path={ckpt}",)), ("pth", (f"ckpt_path={pth}", *model))):
        out = tmp_path / name
        assert (
            run_main(predict_cli.main, *source, f"input_dir={inputs}", f"output_dir={out}") is None
        )
        message = run_main(evaluate_cli.main, *source, f"output_dir={out}_eval", "data=synthetic",
                           f"data.root={tmp_path / 'data'}")  # fmt: skip
        assert message is None, message
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ckpt" / "a.png")),
                          np.asarray(Image.open(tmp_path / "pth" / "a.png")))  # fmt: skip
    scores = [json.loads((tmp_path / f"{n}_eval" / "metrics.json").read_text())["metrics"]
              for n in ("ckpt", "pth")]  # fmt: skip
    assert scores[0] == scores[1] and scores[0]["L1"] > 0
    for bad, expected in (
        ((f"ckpt_path={ckpt}", *model), "model= is for generator files of the reference code"),
        ((f"ckpt_path={pth}", *model, "direction=BtoA"), "holds one generator"),
    ):
        message = run_main(predict_cli.main, *bad, f"input_dir={inputs}", "output_dir=x")
        assert message is not None and expected in message, message


def test_networks_without_a_reference_layout_are_refused() -> None:
    cases = {
        "encoder-decoder without skip connections": UnetGenerator(
            num_downs=5, ngf=4, skip_connections=False
        ),
        "norm=none has no layout": ResnetGenerator(ngf=4, n_blocks=1, norm="none"),
        "has no UGATITGenerator": UGATITGenerator(ngf=4, n_blocks=1, img_size=16, light=True),
    }
    for expected, net in cases.items():
        with pytest.raises(ConfigError, match=expected):
            to_reference(net)
