"""The package installs as a wheel (not only editable) and finds its configs from anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("pix2pix_lit-*.whl")
    return path


@pytest.mark.slow
def test_wheel_ships_every_module_and_config(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"pix2pix_lit/conf/{p.relative_to(REPO / 'conf').as_posix()}"
        for p in (REPO / "conf").rglob("*.yaml")
    }
    package = REPO / "src" / "pix2pix_lit"
    expected |= {f"pix2pix_lit/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}
    assert "pix2pix_lit/bench/__main__.py" in expected
    assert expected <= names, sorted(expected - names)


@pytest.mark.slow
def test_installed_wheel_runs_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run(
        [sys.executable, "-c", "from pix2pix_lit.config import config_dir; print(config_dir())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(probe.stdout.strip()) == site / "pix2pix_lit" / "conf"
    out = subprocess.run(
        [sys.executable, "-m", "pix2pix_lit.train", "--cfg", "job", "model=resnet9"],
        cwd=elsewhere, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "_target_: pix2pix_lit.networks.ResnetGenerator" in out.stdout
