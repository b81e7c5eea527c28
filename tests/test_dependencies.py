"""What the package requires and imports: albumentations without its PyPI query, optional
loggers as extras with a one-line error, and no required package a default run leaves unused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from helpers import ONE_BATCH, TINY, TINY_UNET, compose_run
from pix2pix_lit.config import instantiate, validate_config
from pix2pix_lit.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

# Fails the import the moment albumentations asks PyPI for a newer version.
NO_NETWORK = """
import urllib.request
def refuse(*args, **kwargs):
    raise SystemExit("albumentations queried PyPI at import")
urllib.request.OpenerDirector.open = refuse
import pix2pix_lit
import albumentations
"""

# Runs the training CLI and writes the names of the modules it imported to argv[1].
RECORD_IMPORTS = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
runpy.run_module("pix2pix_lit.train", run_name="__main__")
"""


def required_distributions() -> list[str]:
    """The names in pyproject.toml's ``[project] dependencies``."""
    text = (REPO / "pyproject.toml").read_text()
    block = text.split("\ndependencies = [")[1].split("\n]")[0]
    return [re.split(r"[<>=!~\[ ]", line)[0] for line in re.findall(r'^\s*"([^"]+)"', block, re.M)]


def test_albumentations_imported_after_the_package_does_not_query_pypi() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    out = subprocess.run(
        [sys.executable, "-c", NO_NETWORK], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_albumentations_is_an_extra_pinned_to_its_last_mit_release() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert '\naugment = ["albumentations==2.0.8"]\n' in text
    assert not re.search(r'"albumentationsx', text, re.IGNORECASE)  # no requirement on it


@pytest.mark.parametrize("logger", ["tensorboard", "wandb"])
def test_a_logger_without_its_package_names_the_extra(
    logger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, logger, None)  # find_spec → None: not installed
    cfg = compose_run([f"logger={logger}"], tmp_path)
    with pytest.raises(ConfigError) as err:
        instantiate(cfg.logger[logger])
    assert str(err.value) == (
        f"logger={logger} needs the {logger} package, which is not installed: "
        f"pip install 'pix2pix-lit[{logger}]' (or choose logger=csv)"
    )


def test_augment_without_albumentations_names_the_extra_before_hydra_imports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "albumentations", None)  # find_spec → None
    node = "{_target_:albumentations.Rotate,limit:10}"
    cfg = compose_run(["data=folder", f"data.root={tmp_path}", f"data.augment=[{node}]"], tmp_path)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert str(err.value) == "data.augment needs albumentations: pip install 'pix2pix-lit[augment]'"


@pytest.mark.slow
def test_a_default_run_imports_every_required_package(tmp_path: Path) -> None:
    modules_file = tmp_path / "modules.json"
    overrides = [*TINY, *TINY_UNET, *ONE_BATCH, f"paths.data_dir={tmp_path / 'data'}"]
    overrides.append(f"paths.log_dir={tmp_path / 'logs'}")
    out = subprocess.run(
        [sys.executable, "-c", RECORD_IMPORTS, str(modules_file), *overrides],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    imported = {name.split(".")[0] for name in json.loads(modules_file.read_text())}
    providers = packages_distributions()
    used = {dist.lower() for module in imported for dist in providers.get(module, [])}
    required = {name.lower() for name in required_distributions()}
    assert len(required) == 10
    assert required <= used, f"required but not imported by a default run: {required - used}"
    # the run printed its config tree first (extras.print_config)
    assert out.stdout.lstrip().startswith("CONFIG")
