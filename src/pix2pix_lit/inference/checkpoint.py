"""Load a trained generator for evaluate, predict and export: what every command does first.

Two kinds of file are accepted:

* a pix2pix_lit training checkpoint (``.ckpt``): it carries the fully resolved run config under
  ``pix2pix_lit_config``, whose ``task`` entry instantiates the task with the same networks;
  the checkpoint's ``state_dict`` fills in their weights. No other file is needed.
* a generator file of the reference pix2pix/CycleGAN code (``latest_net_G.pth``, its published
  pretrained models): weights only, so ``model=`` says which network they belong to
  (:mod:`pix2pix_lit.inference.reference` maps the names).

:func:`load_translator` checks ``ckpt_path``, loads either kind and applies the command's
``direction`` and ``inference`` overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from pix2pix_lit.checkpoint_file import (
    CONFIG_KEY,
    epochs_trained,
    first_line,
    list_keys,
    load_file,
    read_checkpoint,
)
from pix2pix_lit.config import instantiate
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.inference.protocol import check_inference_mode, inference_protocol
from pix2pix_lit.inference.reference import REFERENCE_GENERATORS, describe, from_reference
from pix2pix_lit.tasks.base import TranslationTask

DEVICES = ("auto", "cpu", "cuda")
#: Test-time size of the reference code (its test options set load_size = crop_size = 256),
#: the default side for a reference file's predict resize=true and export.
REFERENCE_CROP_SIZE = 256


class Translator(Protocol):
    """What the commands run: a task of a training checkpoint, or a :class:`LoneGenerator`."""

    inference: str
    run_config: dict[str, Any] | None
    # Lightning's 0-based epoch of the checkpoint it was loaded from, and the whole epochs it
    # had trained (one fewer for an interrupted run's mid-epoch checkpoint); None: not one
    checkpoint_epoch: int | None
    checkpoint_epochs_trained: int | None

    @property
    def device(self) -> torch.device: ...

    def generate(self, images: Tensor) -> Tensor: ...

    def translation_network(self) -> nn.Module: ...

    def orient_batch(self, batch: dict[str, Any]) -> dict[str, Any]: ...


class LoneGenerator(nn.Module):
    """A generator without its task (from a reference file), run like a task's generator.

    ``run_config`` holds the ``model`` config that built it, and ``data.crop_size``
    :data:`REFERENCE_CROP_SIZE`.
    """

    def __init__(self, generator: nn.Module, model: dict[str, Any], inference: str) -> None:
        super().__init__()
        self.generator = generator
        self.inference = check_inference_mode(inference)
        self.run_config: dict[str, Any] | None = {
            "model": model,
            "data": {"crop_size": REFERENCE_CROP_SIZE},
        }
        # a reference file records no training
        self.checkpoint_epoch: int | None = None
        self.checkpoint_epochs_trained: int | None = None

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def translation_network(self) -> nn.Module:
        return self.generator

    def generate(self, images: Tensor) -> Tensor:
        with inference_protocol(self.generator, self.inference):
            return self.generator(images)

    def orient_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        return batch


def is_state_dict(contents: Any) -> bool:
    """Whether ``contents`` is a bare ``state_dict()``: names → tensors, as the reference saves."""
    return (
        isinstance(contents, Mapping)
        and bool(contents)
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in contents.items())
    )


def load_task(
    ckpt_path: str | Path,
    device: str | torch.device = "cpu",
    direction: str | None = None,
    contents: Any = None,
) -> TranslationTask:
    """The task of a training checkpoint, with its weights, in eval mode on ``device``.

    ``task.run_config`` holds the run's config (``data``, ``model``, ``task``, ...);
    ``task.checkpoint_epoch`` the checkpoint's (0-based) epoch, ``checkpoint_epochs_trained``
    the whole epochs it had trained.
    ``direction`` (``AtoB`` | ``BtoA``) picks the generator of a two-generator (unpaired)
    task; None keeps the checkpoint's. ``contents``: the file, already loaded.
    """
    checkpoint = read_checkpoint(ckpt_path, contents)
    config = checkpoint[CONFIG_KEY]
    if "task" not in config:
        raise DataError(
            f"ckpt_path={ckpt_path}: its '{CONFIG_KEY}' has no 'task' entry "
            f"(keys: {list_keys(list(config))}); it cannot be rebuilt"
        )
    task: TranslationTask = instantiate(OmegaConf.create(config["task"]))
    try:
        task.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise DataError(
            f"ckpt_path={ckpt_path}: its weights do not fit the networks its config builds "
            f"({first_line(err)})"
        ) from err
    task.run_config = config
    task.checkpoint_epoch = checkpoint.get("epoch")
    task.checkpoint_epochs_trained = epochs_trained(checkpoint)
    if direction is not None:
        if not hasattr(task, "direction"):
            raise ConfigError(
                f"direction={direction}: the {type(task).__name__} task of ckpt_path={ckpt_path} "
                "has a single generator; leave direction unset (null)"
            )
        task.direction = direction
    return task.to(device).eval()


def load_reference_generator(
    ckpt_path: str | Path, state: Mapping[str, Tensor], model: DictConfig | None
) -> LoneGenerator:
    """The generator ``model`` builds, with the weights of a reference file (``state``), in the
    paper protocol like the reference's test.py (dropout on, batch statistics)."""
    if model is None:
        raise ConfigError(
            f"ckpt_path={ckpt_path} holds weights only: it {describe(state)} to say which "
            "network they belong to"
        )
    target = get_class(model._target_)
    if not issubclass(target, REFERENCE_GENERATORS):
        raise ConfigError(
            f"model={target.__name__}: the reference pix2pix/CycleGAN code has no such "
            f"generator; ckpt_path={ckpt_path} {describe(state)}"
        )
    generator = instantiate(model)
    from_reference(state, generator, str(ckpt_path))
    return LoneGenerator(generator, OmegaConf.to_container(model, resolve=True), "paper").eval()


def load_translator(cfg: DictConfig, usage: str, device: str | torch.device = "cpu") -> Translator:
    """What ``cfg.ckpt_path`` holds, ready to run on ``device``: a training checkpoint's task
    (``cfg.model`` must not be set) or a reference generator file's network (``cfg.model``
    names it). ``cfg.direction`` and ``cfg.inference``, when set, override the stored ones.
    ``usage`` is the command line shown when ``ckpt_path`` is missing."""
    if not cfg.get("ckpt_path"):
        raise ConfigError(f"ckpt_path is not set; usage: {usage}")
    contents = load_file(cfg.ckpt_path)
    model = cfg.get("model")
    if is_state_dict(contents):
        if cfg.get("direction") is not None:
            raise ConfigError(
                f"direction={cfg.direction}: ckpt_path={cfg.ckpt_path} holds one generator; "
                "pass the file of the other one (CycleGAN: latest_net_G_B.pth) instead"
            )
        translator: Translator = load_reference_generator(cfg.ckpt_path, contents, model).to(device)
    else:
        if model is not None:
            raise ConfigError(
                f"model= is for generator files of the reference code; ckpt_path="
                f"{cfg.ckpt_path} is a pix2pix_lit checkpoint, whose stored config builds its "
                "networks: leave model unset"
            )
        translator = load_task(cfg.ckpt_path, device, cfg.get("direction"), contents)
    if cfg.get("inference") is not None:
        translator.inference = check_inference_mode(cfg.inference)
    return translator


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``."""
    if name not in DEVICES:
        raise ConfigError(f"device={name!r} is not one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA GPU is available; use device=auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
