"""The lightning-hydra-template's conventions: extras (config tree, tags, known warnings),
debug presets, an optional git-ignored local config, the help page, and img/s in the logs."""

from __future__ import annotations

import fnmatch
import logging
import math
import re
import shutil
import warnings
from pathlib import Path
from unittest import mock

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from helpers import CONF, ONE_BATCH, cli, compose_run, read_metrics, run_tiny
from pix2pix_lit.callbacks import ElapsedTime, ThroughputCallback
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.training.extras import TREE_FILE, apply_extras, ignore_known_noise

REPO = Path(__file__).resolve().parents[1]


# -- extras ------------------------------------------------------------------------------


def test_enforce_tags_refuses_a_run_without_tags(tmp_path: Path) -> None:
    overrides = ["extras.enforce_tags=true", "extras.print_config=false"]
    with pytest.raises(ConfigError, match=r"tags is empty and extras.enforce_tags=true"):
        apply_extras(compose_run(overrides, tmp_path))
    apply_extras(compose_run([*overrides, "tags=[baseline]"], tmp_path))


def test_config_tree_is_printed_and_saved_in_the_run_dir(tmp_path: Path, capsys) -> None:
    apply_extras(compose_run(["loss.lambda_l1=7"], tmp_path))
    saved = (tmp_path / TREE_FILE).read_text()
    assert "lambda_l1: 7" in saved and "lambda_l1: 7" in capsys.readouterr().out
    # resolved (seed = 42 + job number), and the template's order: what is trained first
    assert "seed: 42" in saved
    heads = [line.strip("├└─│ ") for line in saved.splitlines() if line.startswith(("├", "└"))]
    assert heads[:5] == ["task_name: pix2pix", "tags", "data", "model", "discriminator"]
    assert heads.index("trainer") < heads.index("callbacks") < heads.index("logger")


def test_ignore_warnings_silences_only_the_known_noise(caplog) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ignore_known_noise()
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated", DeprecationWarning, stacklevel=1
        )
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger=rank_zero.name):
        rank_zero.info("💡 Tip: For seamless cloud logging and experiment tracking, ...")
        rank_zero.info("GPU available: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False"]


# -- debug presets and the local config ----------------------------------------------------


def test_debug_presets_set_what_the_template_sets(tmp_path: Path) -> None:
    expected = {
        "default": {"max_epochs": 1, "detect_anomaly": True, "enable_checkpointing": False},
        "fdr": {"fast_dev_run": True},
        "limit": {"max_epochs": 3, "limit_train_batches": 0.01, "limit_val_batches": 0.05},
        "overfit": {"max_epochs": 20, "overfit_batches": 3},
        "profiler": {"max_epochs": 1, "profiler": "simple"},
    }
    for preset, trainer in expected.items():
        cfg = compose_run([f"debug={preset}", "experiment=facades_pix2pix"], tmp_path)
        assert {k: cfg.trainer[k] for k in trainer} == trainer, preset
        assert cfg.task_name == "debug" and cfg.logger is None and cfg.callbacks is None
        assert cfg.data.num_workers == 0 and cfg.extras.enforce_tags is False


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["fdr", "overfit"])
def test_debug_presets_run(preset: str, tmp_path: Path) -> None:
    # the others only set trainer flags (above); anomaly detection makes each run slow
    metrics = run_tiny(tmp_path, f"debug={preset}", "trainer.max_epochs=1")
    assert math.isfinite(metrics["train/G_L1_epoch"])
    assert not (tmp_path / "run" / "checkpoints").exists()  # callbacks: null


def test_optional_local_config_applies_when_present(tmp_path: Path) -> None:
    conf = shutil.copytree(CONF, tmp_path / "conf")

    def data_dir() -> str:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            return compose("train", overrides=["debug=fdr"]).paths.data_dir

    assert data_dir() == "data"
    (conf / "local" / "default.yaml").write_text(
        "# @package _global_\npaths:\n  data_dir: /datasets/pix2pix\n"
    )
    assert data_dir() == "/datasets/pix2pix"
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "/conf/local/*" in ignored


# -- the help page ---------------------------------------------------------------------------


def test_help_shows_five_everyday_commands_not_the_config(tmp_path: Path) -> None:
    out = cli("--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    section = out.stdout.split("== Five everyday commands ==")[1].split("==")[0]
    commands = [line.split()[0] for line in section.splitlines() if line.startswith("pix2pix-")]
    assert len(commands) == 5
    scripts = (REPO / "pyproject.toml").read_text().split("[project.scripts]")[1]
    assert all(f"\n{c} = " in scripts for c in commands)
    assert "debug: default, fdr, limit, overfit, profiler" in out.stdout
    assert "_target_" not in out.stdout  # no config dump
    assert "-sc install=bash" in out.stdout


# -- throughput ---------------------------------------------------------------------------


def test_throughput_counts_all_processes_and_leaves_out_validation() -> None:
    callback = ThroughputCallback()
    trainer = mock.Mock(world_size=2, sanity_checking=False)
    module = mock.Mock()
    batch = {"A_path": ["x"] * 3, "A": torch.zeros(3, 1)}
    clock = iter([0.0, 2.0, 5.0, 15.0, 16.0, 21.0, 24.0])
    with mock.patch("pix2pix_lit.callbacks.throughput.time.perf_counter", lambda: next(clock)):
        callback.on_train_epoch_start(trainer, module)  # t=0
        for log_step in (False, True, False, True):  # logging steps at t=2 and t=5
            trainer._logger_connector.should_update_logs = log_step
            callback.on_train_batch_end(trainer, module, None, batch, 0)
        callback.on_validation_start(trainer, module)  # t=15 ... t=16: validation
        callback.on_validation_end(trainer, module)
        trainer._logger_connector.should_update_logs = True
        callback.on_train_batch_end(trainer, module, None, batch, 0)  # t=21
        callback.on_train_epoch_end(trainer, module)  # t=24
    logged = [(c.args[0], c.args[1]) for c in module.log.call_args_list]
    assert logged == [
        ("train/img_per_s", 12 / 2),  # 2 batches x 3 images x 2 processes in 2 s
        ("train/img_per_s", 12 / 3),
        ("train/img_per_s", 6 / (21 - 5 - 1)),  # the second of validation left out
        ("train/img_per_s_epoch", 30 / (24 - 1)),
    ]


def test_elapsed_time_goes_on_from_the_checkpoint_and_leaves_out_the_gap() -> None:
    first, resumed = ElapsedTime(), ElapsedTime()
    trainer, module = mock.Mock(), mock.Mock()
    clock = iter([100.0, 130.0, 131.0, 5000.0, 5010.0])
    with mock.patch("pix2pix_lit.callbacks.elapsed.time.monotonic", lambda: next(clock)):
        first.on_train_start(trainer, module)  # t=100
        first.on_train_epoch_end(trainer, module)  # t=130: 30 s
        saved = first.state_dict()  # t=131, in the checkpoint; the session dies after it
        resumed.load_state_dict(saved)  # a later session, hours on
        resumed.on_train_start(trainer, module)  # t=5000
        resumed.on_train_epoch_end(trainer, module)  # t=5010
    logged = [(c.args[0], c.args[1]) for c in module.log.call_args_list]
    assert logged == [("time/elapsed_s", 30.0), ("time/elapsed_s", 31.0 + 10.0)]


def test_img_per_s_reaches_the_csv_log(tmp_path: Path) -> None:
    run_tiny(tmp_path, *ONE_BATCH, "trainer.log_every_n_steps=1")
    rows = read_metrics(tmp_path / "run")
    (elapsed,) = [float(r["time/elapsed_s"]) for r in rows if r.get("time/elapsed_s")]
    assert elapsed > 0
    (step,) = [float(r["train/img_per_s"]) for r in rows if r.get("train/img_per_s")]
    (epoch,) = [float(r["train/img_per_s_epoch"]) for r in rows if r.get("train/img_per_s_epoch")]
    assert step > 0 and epoch > 0


# -- the README's config groups ----------------------------------------------------------------


@pytest.mark.parametrize(
    "group",
    ["data", "model", "discriminator", "loss", "optim", "scheduler", "task", "trainer",
     "logger", "callbacks", "perf", "experiment", "hydra/launcher", "hparams_search"],
)  # fmt: skip
def test_the_readmes_config_table_names_every_option_of_each_group(group: str) -> None:
    readme = (REPO / "README.md").read_text()
    (row,) = re.findall(rf"^\| `{re.escape(group)}`[^|]*\|(.*)$", readme, re.M)
    named = re.findall(r"`([\w*]+)`", row)  # names, and patterns as `loss_ablation_*`
    options = [p.stem for p in (CONF / group).glob("*.yaml")]
    if group == "hydra/launcher":
        options.append("basic")  # Hydra's own, no file here
    missing = [o for o in options if not any(fnmatch.fnmatch(o, n) for n in named)]
    assert not missing, f"README's `{group}` row does not name {missing}"
