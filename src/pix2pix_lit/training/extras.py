"""What a run does before training, as the lightning-hydra-template's ``extras`` config:
print the composed config as a tree, insist on tags, and silence known harmless noise."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import rich.syntax
import rich.tree
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from pix2pix_lit.errors import ConfigError

# The tree shows these first, in this order, then the remaining keys in config order.
TREE_ORDER = (
    "task_name",
    "tags",
    "data",
    "model",
    "discriminator",
    "loss",
    "optim",
    "scheduler",
    "task",
    "trainer",
    "callbacks",
    "logger",
    "paths",
)
TREE_FILE = "config_tree.log"
# Warnings known to be harmless here: (message regex, why it is noise).
KNOWN_WARNINGS = (
    (".*LeafSpec.*", "Lightning 2.6.6 calls a pytree API that torch 2.13 deprecates"),
)
# Log lines known to carry nothing about the run: (logger name, message start).
KNOWN_LOG_LINES = (("lightning.pytorch.utilities.rank_zero", "💡 Tip: For seamless cloud"),)


def apply_extras(cfg: DictConfig) -> None:
    """Act on ``cfg.extras`` (see ``conf/extras/default.yaml``); nothing without it."""
    extras = cfg.get("extras")
    if not extras:
        return
    if extras.get("ignore_warnings"):
        ignore_known_noise()
    if extras.get("enforce_tags") and not cfg.get("tags"):
        raise ConfigError(
            "tags is empty and extras.enforce_tags=true: name what the run is for, e.g. "
            "tags=[baseline,facades] (or extras.enforce_tags=false)"
        )
    if extras.get("print_config"):
        print_config_tree(cfg, save_to=Path(cfg.paths.output_dir) / TREE_FILE)


class _DropLines(logging.Filter):
    def __init__(self, starts: Sequence[str]) -> None:
        super().__init__()
        self.starts = tuple(starts)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def ignore_known_noise() -> None:
    """Silence :data:`KNOWN_WARNINGS` and :data:`KNOWN_LOG_LINES`, nothing else."""
    for message, _why in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name, start in KNOWN_LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in logger.filters):
            logger.addFilter(_DropLines([start]))


def config_tree(cfg: DictConfig) -> rich.tree.Tree:
    """The resolved config as a tree: a branch per top-level key (:data:`TREE_ORDER` first),
    holding its YAML, or the key and its value for a plain value."""
    tree = rich.tree.Tree("CONFIG", guide_style="dim")
    keys = [k for k in TREE_ORDER if k in cfg] + [k for k in cfg if k not in TREE_ORDER]
    for key in keys:
        node = cfg[key]
        if OmegaConf.is_config(node):
            yaml = OmegaConf.to_yaml(node, resolve=True).rstrip()
            tree.add(str(key)).add(rich.syntax.Syntax(yaml, "yaml"))
        else:
            tree.add(f"{key}: {node}")
    return tree


@rank_zero_only
def print_config_tree(cfg: DictConfig, save_to: Path | None = None) -> None:
    """Print :func:`config_tree` to the terminal and, without colours, to ``save_to``."""
    tree = config_tree(cfg)
    Console().print(tree)
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        with open(save_to, "w") as file:
            Console(file=file, color_system=None, width=100).print(tree)
