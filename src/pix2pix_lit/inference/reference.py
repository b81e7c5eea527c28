"""Generator weights in the layout of the reference pix2pix/CycleGAN code, both ways.

The reference code (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``) saves a
generator's ``state_dict()`` alone as ``<epoch>_net_G.pth`` (``latest_net_G.pth``; CycleGAN:
``_net_G_A``/``_net_G_B``), the format of its published pretrained models. Its networks compute
what :class:`~pix2pix_lit.networks.UnetGenerator` and
:class:`~pix2pix_lit.networks.ResnetGenerator` compute, layer for layer; only the names differ:

* ``UnetGenerator.model`` is the outermost ``UnetSkipConnectionBlock``, whose one
  ``nn.Sequential`` named ``model`` holds the down layers, the inner block, the up layers (and
  dropout): the inner levels' keys nest as ``model.model.1.model.3.model.3...``. Here each
  :class:`~pix2pix_lit.networks.UnetBlock` keeps ``down``, ``submodule`` and ``up`` apart.
* ``ResnetGenerator.model`` is the same ``nn.Sequential`` here; its ``ResnetBlock`` calls its
  layers ``conv_block`` where this project says ``block``.

Batch norm's ``running_mean``/``running_var``/``num_batches_tracked`` map like the weights.
Instance norm has no affine parameters and no running statistics in the current reference code
(``get_norm_layer``), nor here; files saved before PyTorch 0.4, when instance norm kept
running statistics, can hold them, and the reference's own loader deletes them
(``BaseModel.__patch_instance_norm_state_dict``): so does :func:`from_reference`. Batch-norm files from before PyTorch 0.4 lack
``num_batches_tracked``, which inference never reads; it keeps the freshly built value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from omegaconf import OmegaConf
from torch import Tensor, nn

from pix2pix_lit.config import config_dir
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.networks import ResnetGenerator, UnetBlock, UnetGenerator

#: the networks that have a reference layout
REFERENCE_GENERATORS = (UnetGenerator, ResnetGenerator)
_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")
_DATA_PARALLEL_PREFIX = "module."
_LISTED_KEYS = 5


# -- our names -> the reference's -------------------------------------------------------------


def reference_keys(generator: nn.Module) -> dict[str, str]:
    """Each key of ``generator.state_dict()`` → its name in the reference code."""
    if not any(isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d) for m in generator.modules()):
        # Departure: with norm="none" the reference's convolutions have no bias
        # (its use_bias is true for instance norm only), this project's keep theirs.
        raise ConfigError(
            "model.norm=none has no layout in the reference code: its convolutions have no "
            "bias there, and these have one; use norm=batch or norm=instance"
        )
    if isinstance(generator, UnetGenerator):
        return _unet_keys(generator)
    if isinstance(generator, ResnetGenerator):
        return {key: key.replace(".block.", ".conv_block.") for key in generator.state_dict()}
    raise ConfigError(
        f"the reference pix2pix/CycleGAN code has no {type(generator).__name__}; its layout "
        "exists for the U-Net (model=unet256, unet128) and ResNet (model=resnet9, resnet6) "
        "generators only"
    )


def _unet_keys(generator: UnetGenerator) -> dict[str, str]:
    """Walk the levels outermost first; in the reference, a level's Sequential is
    ``[*down, inner level, *up]`` (the innermost has no inner level)."""
    if not generator.model.skip_connections:
        raise ConfigError(
            "the encoder-decoder without skip connections (model=encdec256) has no layout in "
            "the reference code: its UnetGenerator always has the skips"
        )
    keys: dict[str, str] = {}
    ours, theirs = "model", "model.model"
    block: nn.Module = generator.model
    while isinstance(block, UnetBlock):
        inner = not isinstance(block.submodule, nn.Identity)
        for part, offset in (("down", 0), ("up", len(block.down) + inner)):
            for name in getattr(block, part).state_dict():
                index, rest = name.split(".", 1)
                keys[f"{ours}.{part}.{name}"] = f"{theirs}.{int(index) + offset}.{rest}"
        ours, theirs = f"{ours}.submodule", f"{theirs}.{len(block.down)}.model"
        block = block.submodule
    return keys


def to_reference(generator: nn.Module) -> dict[str, Tensor]:
    """``generator``'s weights and buffers under the reference's names (CPU copies): what the
    reference's ``save_networks`` writes and its ``load_networks`` reads."""
    keys = reference_keys(generator)
    return {keys[k]: v.detach().cpu().clone() for k, v in generator.state_dict().items()}


# -- the reference's names -> ours ------------------------------------------------------------


def from_reference(state: Mapping[str, Tensor], generator: nn.Module, source: str) -> None:
    """Load a reference state dict into ``generator`` (built by ``model=``), in place.

    Raises DataError naming ``source`` and what the file looks like when it does not fit.
    """
    state = _without_data_parallel_prefix(state)
    ours = generator.state_dict()
    keys = reference_keys(generator)
    theirs_to_ours = {v: k for k, v in keys.items()}
    loaded: dict[str, Tensor] = {}
    unexpected = []
    for key, value in state.items():
        if key in theirs_to_ours:
            loaded[theirs_to_ours[key]] = value
        elif not _is_instance_norm_statistic(key, state):
            unexpected.append(key)
    missing = [keys[k] for k in ours if k not in loaded and not k.endswith("num_batches_tracked")]
    wrong_shape = [keys[k] for k, v in loaded.items() if tuple(v.shape) != tuple(ours[k].shape)]
    if unexpected or missing or wrong_shape:
        raise DataError(_mismatch(source, state, generator, unexpected, missing, wrong_shape))
    generator.load_state_dict({**ours, **loaded})


def _without_data_parallel_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    # The reference saves net.module's weights; a file saved from nn.DataParallel itself
    # prefixes every key with "module.".
    if state and all(k.startswith(_DATA_PARALLEL_PREFIX) for k in state):
        return {k.removeprefix(_DATA_PARALLEL_PREFIX): v for k, v in state.items()}
    return dict(state)


def _is_instance_norm_statistic(key: str, state: Mapping[str, Tensor]) -> bool:
    """A running statistic of a norm layer without affine weight: the reference's batch norm
    is always affine, so this is an old instance-norm buffer (see the module docstring)."""
    owner, _, name = key.rpartition(".")
    return name in _STATISTICS and f"{owner}.weight" not in state


# -- what a file looks like -------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceGenerator:
    """A reference generator as read from its weights: ``name`` as its ``--netG`` option
    (``unet_256``, ``resnet_9blocks``...), ``option`` the ``model=`` config closest to it,
    ``params`` the keys of that config it fixes."""

    name: str
    option: str
    params: dict[str, int | str]

    def __str__(self) -> str:
        p = self.params
        return (
            f"a {self.name} generator (ngf={p['ngf']}, {p['in_channels']} -> "
            f"{p['out_channels']} channels, {p['norm']} norm)"
        )

    def model_overrides(self) -> str:
        """The ``model=`` overrides that build this generator."""
        defaults = OmegaConf.load(config_dir() / "model" / f"{self.option}.yaml")
        changed = [f"model.{k}={v}" for k, v in self.params.items() if defaults.get(k) != v]
        return " ".join([f"model={self.option}", *changed])


#: --netG option of the reference -> the model= option building the same network
_OPTIONS = {
    "unet_256": "unet256",
    "unet_128": "unet128",
    "resnet_9blocks": "resnet9",
    "resnet_6blocks": "resnet6",
}


def identify(state: Mapping[str, Tensor]) -> ReferenceGenerator | str:
    """The reference generator ``state`` holds the weights of, or what it looks like instead."""
    state = _without_data_parallel_prefix(state)
    keys = list(state)
    if "model.1.weight" in state and any(".conv_block." in k for k in keys):
        blocks = len({k.split(".")[1] for k in keys if ".conv_block." in k})
        structure: dict[str, int | str] = {"n_blocks": blocks}
        name, family = f"resnet_{blocks}blocks", "resnet9"
        # the last convolution (out_channels, ngf, 7, 7) has the highest index
        first, last, out_dim = "model.1", f"model.{max(int(k.split('.')[1]) for k in keys)}", 0
    elif "model.model.0.weight" in state and "model.model.3.weight" in state:
        num_downs = max(k.split(".").count("model") for k in keys) - 1
        structure = {"num_downs": num_downs}
        name, family = f"unet_{2**num_downs}", "unet256"
        # the outermost up-convolution, a ConvTranspose2d: (2 ngf, out_channels, 4, 4)
        first, last, out_dim = "model.model.0", "model.model.3", 1
    elif keys and all(k.startswith("model.") for k in keys):
        return "a PatchGAN discriminator of the reference code (a *_net_D.pth), not a generator"
    else:
        listed = ", ".join(keys[:_LISTED_KEYS]) or "none"
        return f"no network of the reference code (its keys: {listed}, ...)"
    weight = state[f"{first}.weight"]
    if any(k.endswith(".weight") and state[k].dim() == 1 for k in keys):
        norm = "batch"
    else:  # the reference's convolutions have biases with instance norm only
        norm = "instance" if f"{first}.bias" in state else "none"
    params: dict[str, int | str] = {
        "in_channels": int(weight.shape[1]),
        "out_channels": int(state[f"{last}.weight"].shape[out_dim]),
        **structure,
        "ngf": int(weight.shape[0]),
        "norm": norm,
    }
    return ReferenceGenerator(name, _OPTIONS.get(name, family), params)


def describe(state: Mapping[str, Tensor]) -> str:
    """What ``state`` looks like, with the ``model=`` overrides that build it if they exist."""
    found = identify(state)
    if isinstance(found, str):
        return f"looks like {found}"
    return f"looks like {found} of the reference code; pass {found.model_overrides()}"


def _mismatch(
    source: str,
    state: Mapping[str, Tensor],
    generator: nn.Module,
    unexpected: list[str],
    missing: list[str],
    wrong_shape: list[str],
) -> str:
    found, built = identify(state), identify(to_reference(generator))
    if found != built:
        hint = f"; pass {found.model_overrides()}" if isinstance(found, ReferenceGenerator) else ""
        return f"ckpt_path={source} looks like {found}, not {built} as model= builds{hint}"
    problems = [
        f"{label}: {', '.join(names[:_LISTED_KEYS])}{', ...' if len(names) > _LISTED_KEYS else ''}"
        for label, names in (
            ("unexpected keys", unexpected),
            ("missing keys", missing),
            ("other shapes", wrong_shape),
        )
        if names
    ]
    return f"ckpt_path={source} does not fit {built} as model= builds ({'; '.join(problems)})"
