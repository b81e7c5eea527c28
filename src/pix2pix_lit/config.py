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


def register_resolvers() -> None:
    """``${add:a,b}``: sum of numbers (e.g. max_epochs = n_epochs + n_epochs_decay)."""
    if not OmegaConf.has_resolver("add"):
        OmegaConf.register_new_resolver("add", lambda *xs: sum(xs))


register_resolvers()
