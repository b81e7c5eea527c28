"""Where the Hydra configs live, the resolvers they use, their checks, and instantiating them
with one-line errors.

An installed wheel carries the configs as ``pix2pix_lit/conf``; a source checkout (or an
editable install) keeps them in the repository's top-level ``conf/``. Either way
``python -m pix2pix_lit.train`` finds them from any working directory.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from pix2pix_lit.errors import ConfigError, UserError

_PACKAGE_DIR = Path(__file__).resolve().parent
#: The error of ``data.augment`` without albumentations installed.
NEEDS_ALBUMENTATIONS = "data.augment needs albumentations: pip install 'pix2pix-lit[augment]'"


def config_dir() -> Path:
    """The folder holding ``train.yaml`` and the config groups."""
    for candidate in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parents[1] / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"pix2pix_lit configs not found in {_PACKAGE_DIR / 'conf'} or "
        f"{_PACKAGE_DIR.parents[1] / 'conf'}; reinstall the package (pip install .)"
    )


def override_key(override: str) -> str:
    """The config key a command-line override sets: ``seed`` for ``seed=1``, ``+seed=1``,
    ``++seed=1`` and ``~seed``."""
    return override.partition("=")[0].lstrip("+~")


def discriminator_channels(conditional: bool, in_channels: int, out_channels: int) -> int:
    """A conditional D sees (x, y) stacked on channels, an unconditional one y alone."""
    return in_channels + out_channels if conditional else out_channels


def _native_mixed_precision(accelerator: str) -> str:
    # imported when a config resolves it: torch and Lightning stay out of `import pix2pix_lit`
    from pix2pix_lit.hardware import native_mixed_precision

    return native_mixed_precision(accelerator)


def register_resolvers() -> None:
    """Resolvers used by the configs.

    ``${add:a,b}``: sum of numbers (max_epochs = n_epochs + n_epochs_decay);
    ``${discriminator_channels:conditional,in,out}``: input channels of the discriminator;
    ``${native_mixed_precision:accelerator}``: ``bf16-mixed`` where that device computes bf16
    in hardware, else ``32-true`` (``perf=fast``).
    """
    for name, fn in (
        ("add", lambda *xs: sum(xs)),
        ("discriminator_channels", discriminator_channels),
        ("native_mixed_precision", _native_mixed_precision),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def instantiate(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets a :class:`UserError` raised by a constructor
    through as itself (Hydra wraps it), so the entry point can print its one-line message."""
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


def validate_config(cfg: DictConfig) -> None:
    """Checks that would otherwise fail late or deep inside a library, naming the key.

    Constructors check their own arguments (data, networks, losses); this covers values
    that reach torch or Lightning directly, and the types of the numbers everything reads
    (``optim.lr=abc`` or ``data.batch_size=2.5`` would fail with a traceback far away).
    """
    for side in ("generator", "discriminator"):
        key = f"optim.{side}"
        require_number(cfg, f"{key}.lr", 0, strict=True, hint=" (the paper uses 2e-4)")
        require_number(cfg, f"{key}.weight_decay", 0)
        betas = OmegaConf.select(cfg, f"{key}.betas", default=None)
        if betas is not None and not all(_is_number(b) and 0.0 <= b < 1.0 for b in betas):
            raise ConfigError(f"{key}.betas={list(betas)} must each be a number in [0, 1)")
    # before Hydra instantiates the transforms, which would fail on the import with a traceback
    if OmegaConf.select(cfg, "data.augment") and importlib.util.find_spec("albumentations") is None:
        raise ConfigError(NEEDS_ALBUMENTATIONS)
    target = str(cfg.task.get("_target_", ""))
    if cfg.task.get("cuda_graph") and not target.endswith(".Pix2Pix"):
        raise ConfigError(
            f"task.cuda_graph=true (perf=graph) captures the pix2pix step only, not {target}'s; "
            "leave out perf=graph / task.cuda_graph for this task"
        )
    if OmegaConf.select(cfg, "trainer.max_epochs", default=None) != -1:
        require_number(cfg, "trainer.max_epochs", 1, integer=True, hint=" (or -1 for no limit)")
    for key in ("data.batch_size", "data.load_size", "data.crop_size"):
        require_number(cfg, key, 1, integer=True)
    require_number(cfg, "data.num_workers", 0, integer=True)


def require_number(
    cfg: DictConfig,
    key: str,
    minimum: float,
    *,
    integer: bool = False,
    strict: bool = False,
    hint: str = "",
) -> None:
    """Raise :class:`ConfigError` unless ``key`` (when set) holds a number (an integer with
    ``integer``) that is at least ``minimum`` (above it with ``strict``). The message names
    the key the value came from: ``optim.lr`` for ``optim.generator.lr: ${optim.lr}``."""
    value = OmegaConf.select(cfg, key, default=None)
    if value is None:
        return
    valid_type = _is_number(value) and (isinstance(value, int) or not integer)
    if valid_type and (value > minimum or (value == minimum and not strict)):
        return
    kind = "an integer" if integer else "a number"
    bound = f"{'>' if strict else '>='} {minimum}"
    raise ConfigError(f"{_source_key(cfg, key)}={value!r} must be {kind} {bound}{hint}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _source_key(cfg: DictConfig, key: str) -> str:
    """``key``, or the key its value is copied from when it is a plain ``${other.key}``."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    raw = OmegaConf.to_container(parent, resolve=False).get(leaf)
    if isinstance(raw, str) and raw.startswith("${") and raw.endswith("}") and ":" not in raw:
        return raw[2:-1]
    return key


register_resolvers()
