"""What a W&B run holds, read back from the offline run file that ``wandb sync`` uploads:
the flattened config, best-epoch summaries, the table of validation samples, the model
artifact and the job type."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("wandb")  # the wandb extra (part of dev)

import wandb_records
from helpers import run_tiny
from pix2pix_lit.loggers import flat_config, override_tags

# one offline W&B run of two epochs: ~25 s on 2 shared cores
pytestmark = pytest.mark.slow

TWO_EPOCHS = [
    "logger=wandb",
    "logger.wandb.log_model=true",
    "scheduler.n_epochs=1",
    "scheduler.n_epochs_decay=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "loss.lambda_l1=7",
]


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .wandb file of an offline two-epoch run with log_model=true."""
    import wandb

    tmp = tmp_path_factory.mktemp("wandb_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.delenv("WANDB_API_KEY", raising=False)
        # where W&B stages offline artifacts until `wandb sync`
        mp.setenv("WANDB_DATA_DIR", str(tmp / "wandb_data"))
        try:
            run_tiny(tmp, *TWO_EPOCHS)
        finally:
            wandb.finish()
            # the W&B service process writes the run file; it has written all of it only once
            # it has stopped (finish() can return earlier on a loaded machine: a CI run read a
            # file with the run record but no config, history or artifacts)
            wandb.teardown()
    return wandb_records.offline_run_file(tmp / "run")


def test_flat_config_joins_nested_keys_with_dots() -> None:
    nested = {"loss": {"lambda_l1": 100, "gan": {"mode": "vanilla"}}, "tags": [], "x": {}}
    assert flat_config(nested) == {
        "loss.lambda_l1": 100,
        "loss.gan.mode": "vanilla",
        "tags": [],
        "x": {},
    }


def test_override_tags_leave_out_paths_tags_and_overlong_overrides() -> None:
    overrides = (
        "loss.lambda_l1=10",
        "+discriminator.n_layers=4",
        "paths.data_dir=../data",
        "++paths.log_dir=/tmp/logs",
        "paths=cluster",
        "tags=[a,b]",
        "~callbacks.image_grid",
        "model.note=" + "x" * 60,
    )
    assert override_tags(overrides) == [
        "loss.lambda_l1=10",
        "+discriminator.n_layers=4",
        "~callbacks.image_grid",
    ]


def test_run_config_has_every_key_flattened_and_each_group_choice(run_file: Path) -> None:
    config = wandb_records.config(run_file)
    assert config["loss.lambda_l1"] == 7
    assert config["model.ngf"] == 8 and config["trainer.max_epochs"] == 2
    assert config["model"] == "unet256" and config["data"] == "synthetic"
    assert config["logger"] == "wandb" and config["experiment"] is None
    assert not [key for key, value in config.items() if isinstance(value, dict) and value]


def test_validation_summaries_are_the_best_epoch(run_file: Path) -> None:
    summary = wandb_records.summary(run_file)
    for name, best in (("val/PSNR", max), ("val/SSIM", max), ("val/L1", min)):
        per_epoch = wandb_records.history(run_file, name)
        assert len(per_epoch) == 2, name
        assert summary[name] == {best.__name__: best(per_epoch)}, name
    # the metric definitions keep Lightning's step axis
    (psnr,) = [m for m in wandb_records.of_type(run_file, "metric") if m.name == "val/PSNR"]
    assert psnr.step_metric == "trainer/global_step" and psnr.summary.max


def test_validation_samples_are_a_table_of_images_per_epoch(run_file: Path) -> None:
    tables = [a for a in wandb_records.of_type(run_file, "artifact") if a.type == "run_table"]
    assert len(tables) == 2  # one per epoch
    for epoch, table in enumerate(tables):
        files = {c.path: c.local_path for c in table.manifest.contents}
        content = json.loads(Path(files["val/samples_table.table.json"]).read_text())
        assert content["columns"] == ["epoch", "image", "input", "output", "target"]
        assert [row[:2] for row in content["data"]] == [[epoch, i] for i in range(4)]
        cells = [cell for row in content["data"] for cell in row[2:]]
        assert all(cell["_type"] == "image-file" for cell in cells)
        # 4 images x 3 columns, each its own PNG in the table's artifact
        assert len({cell["path"] for cell in cells}) == 12
        assert all(cell["path"] in files for cell in cells)


def test_log_model_makes_the_best_checkpoint_an_artifact(run_file: Path) -> None:
    models = [a for a in wandb_records.of_type(run_file, "artifact") if a.type == "model"]
    assert len(models) == 1
    (model,) = models
    metadata = json.loads(model.metadata)
    assert metadata["original_filename"].startswith("best_epoch")
    assert {"best", "latest"} <= set(model.aliases)
    assert [c.path for c in model.manifest.contents] == ["model.ckpt"]
    assert metadata["score"] == min(wandb_records.history(run_file, "val/L1"))


def test_single_runs_have_job_type_train(run_file: Path) -> None:
    (run,) = wandb_records.of_type(run_file, "run")
    assert run.job_type == "train"  # sweeps: test_sweeps.py


def test_the_documented_upload_command_takes_the_offline_run(run_file: Path) -> None:
    run_dir = run_file.parents[2]
    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(wandb_cli), "sync", "--dry-run", str(run_file.parent)],
        capture_output=True,
        text=True,
        cwd=run_dir,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Would sync 1 run(s)" in out.stderr + out.stdout
    assert run_file.name in out.stderr + out.stdout
