"""Where the Hydra configs live, and the resolvers they use.

An installed wheel carries the configs as ``pix2pix_lit/conf``; a source checkout (or an
editable install) keeps them in the repository's top-level ``conf/``. Either way
``python -m pix2pix_lit.train`` finds them from any working directory.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

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


register_resolvers()
