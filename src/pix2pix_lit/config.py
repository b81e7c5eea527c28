"""Where the Hydra configs live, and the resolvers they use.

An installed wheel carries the configs as ``pix2pix_lit/conf``; a source checkout (or an
editable install) keeps them in the repository's top-level ``conf/``. Either way
``python -m pix2pix_lit.train`` finds them from any working directory.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from pix2pix_lit.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent


def config_dir() -> Path:
    """The folder holding ``train.yaml`` and the config groups."""
    for candidate in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parents[1] / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"pix2pix_lit configs not found in {_PACKAGE_DIR / 'conf'} or "
        f"{_PACKAGE_DIR.parents[1] / 'conf'}; reinstall the package (pip install .)"
    )


def in_sweep() -> bool:
    """Whether this process runs a job of a Hydra multirun (``-m``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def discriminator_channels(conditional: bool, in_channels: int, out_channels: int) -> int:
    """A conditional D sees (x, y) stacked on channels, an unconditional one y alone."""
    return in_channels + out_channels if conditional else out_channels


def register_resolvers() -> None:
    """Resolvers used by the configs.

    ``${add:a,b}``: sum of numbers (max_epochs = n_epochs + n_epochs_decay);
    ``${discriminator_channels:conditional,in,out}``: input channels of the discriminator.
    """
    for name, fn in (
        ("add", lambda *xs: sum(xs)),
        ("discriminator_channels", discriminator_channels),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def validate_config(cfg: DictConfig) -> None:
    """Checks that would otherwise fail late or deep inside a library, naming the key.

    Constructors check their own arguments (data, networks, losses); this covers values
    that reach torch or Lightning directly.
    """
    for side in ("generator", "discriminator"):
        node = cfg.optim[side]
        key = f"optim.{side}"
        if not node.lr > 0:
            raise ConfigError(f"{key}.lr={node.lr} must be > 0 (the paper uses 2e-4)")
        if "betas" in node and not all(0.0 <= b < 1.0 for b in node.betas):
            raise ConfigError(f"{key}.betas={list(node.betas)} must each be in [0, 1)")
        if node.get("weight_decay", 0.0) < 0:
            raise ConfigError(f"{key}.weight_decay={node.weight_decay} must be >= 0")
    target = str(cfg.task.get("_target_", ""))
    if cfg.task.get("cuda_graph") and not target.endswith(".Pix2Pix"):
        raise ConfigError(
            f"task.cuda_graph=true (perf=graph) captures the pix2pix step only, not {target}'s; "
            "leave out perf=graph / task.cuda_graph for this task"
        )
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs != -1 and max_epochs < 1:
        raise ConfigError(f"trainer.max_epochs={max_epochs} must be >= 1 (or -1 for no limit)")


register_resolvers()
