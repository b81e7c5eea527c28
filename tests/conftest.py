"""Shared pytest fixtures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from pix2pix_lit.data import make_synthetic_paired_dataset

# The real CMP Facades copy lives beside the repository, in ../shared/data (never inside it).
FACADES_ROOT = Path(__file__).resolve().parents[1].parent / "shared/data/facades"


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated pix2pix-layout dataset: train/val/test of 8/4/4 A|B images, 64x32."""
    root = tmp_path_factory.mktemp("data") / "synthetic"
    return make_synthetic_paired_dataset(root, {"train": 8, "val": 4, "test": 4}, size=32)


@pytest.fixture(scope="session")
def facades_root() -> Path:
    """The real CMP Facades dataset (train/ and test/ only); skips the test when absent."""
    if not (FACADES_ROOT / "train").is_dir():
        pytest.skip(f"real CMP Facades not found at {FACADES_ROOT} (see README: ../shared/data)")
    return FACADES_ROOT


@pytest.fixture
def no_val_root(tmp_path: Path) -> Path:
    return make_synthetic_paired_dataset(tmp_path / "noval", {"train": 6, "test": 3}, size=16)


@pytest.fixture(autouse=True)
def _finish_wandb_runs():
    """Close a W&B run a test left open (in-process training does not, unlike the CLI), so
    the next test in the same process gets a run of its own."""
    yield
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run a module's tiny networks on one thread: on a busy 2-core machine, handing such
    small convolutions between two threads made those tests several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
