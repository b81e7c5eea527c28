"""experiments/long_runs.sh: the long runs of the studies. It trains the row the studies share
once, so that row must be one config in every study; each of its sweeps must compose job by
job, resume into its own folder, and a rerun must skip the stages already done."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import create_config_search_path
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from helpers import CONF, compose_run

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "long_runs.sh"
STAGES = ["reference", "loss", "generator", "patch", "photo2labels", "unpaired", "recipe"]
# the 128x128 pix2pix overrides of every study row
AT_128 = ["data.load_size=143", "data.crop_size=128", "model.num_downs=7",
          "scheduler.n_epochs=10", "scheduler.n_epochs_decay=10"]  # fmt: skip


def composed(overrides: list[str], out: Path) -> dict:
    """The resolved config without the keys that only name the run."""
    cfg = OmegaConf.to_container(compose_run([*overrides, *AT_128], out), resolve=True)
    for naming in ("task_name", "tags", "paths"):
        del cfg[naming]
    return cfg


@pytest.mark.parametrize(
    ("row", "same_row_elsewhere"),
    [
        ("experiment=loss_ablation_l1_cgan", "experiment=patch_size discriminator=patch70"),
        ("experiment=loss_ablation_l1_cgan", "experiment=generator_ablation loss.lambda_gan=1"),
        ("experiment=loss_ablation_l1_cgan", "experiment=facades_pix2pix model=unet128"),
        ("experiment=loss_ablation_l1", "experiment=generator_ablation loss.lambda_gan=0"),
    ],
)
def test_a_row_trained_once_is_the_same_config_in_every_study_that_reads_it(
    row: str, same_row_elsewhere: str, tmp_path: Path
) -> None:
    assert composed(row.split(), tmp_path) == composed(same_row_elsewhere.split(), tmp_path)


# what the stand-in python does as evaluate
WRITE_METRICS_JSON = (
    "if sys.argv[2] == 'pix2pix_lit.evaluate':\n"
    "    out = Path(next(a for a in sys.argv if a.startswith('output_dir='))[11:])\n"
    "    out.mkdir(parents=True, exist_ok=True)\n"
    "    (out / 'metrics.json').write_text('{}')\n"
)


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in python that records each command line instead of running it; as
    ``evaluate`` it writes the ``metrics.json`` that marks a finished evaluation."""
    record = tmp_path / "commands.jsonl"
    python = tmp_path / "python"
    python.write_text(
        f"#!{sys.executable}\nimport json, sys\nfrom pathlib import Path\n"
        f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"{WRITE_METRICS_JSON}"
    )
    python.chmod(0o755)
    return python, record


def finished_job(job: Path) -> None:
    """A job folder as a sweep leaves it once the job has ended its training."""
    job.mkdir(parents=True)
    (job / "final_metrics.json").write_text("{}")


def run_script(python: Path, log_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={
            **os.environ,
            "PYTHON": str(python),
            "LOG_DIR": str(log_dir),
            "SEGMENTER": "segmenter.ckpt",
            "RECORDS": str(log_dir.parent / "records"),
            "POLL_S": "0.1",
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_sweep_composes_job_by_job_and_resumes_into_its_stage_folder(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    python, record = recorded
    log_dir = tmp_path / "runs"
    result = run_script(python, log_dir)
    assert result.returncode == 0, result.stderr
    commands = [json.loads(line) for line in record.read_text().splitlines()]
    sweeps = [c[3:] for c in commands if c[:3] == ["-m", "pix2pix_lit.train", "-m"]]
    folders = [o.split("=", 1)[1] for s in sweeps for o in s if o.startswith("hydra.sweep.dir=")]
    names = [Path(f).name for f in folders]
    assert names[:5] == ["reference", "loss", "generator", "patch", "photo2labels"]
    assert sorted(names[5:7]) == ["cyclegan", "ugatit"]  # started together, in either order
    assert names[7:] == ["recipe"]
    assert all("ckpt_path=auto" in s and "hydra/launcher=local_parallel" in s for s in sweeps)
    parser = OverridesParser.create(
        config_loader=ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF)))
    )
    jobs = 0
    for sweep in sweeps:
        (batch,) = BasicSweeper.split_arguments(parser.parse_overrides(sweep), None)
        for job in batch:
            cfg = compose_run([o for o in job if not o.startswith("hydra")], tmp_path / "job")
            # fp32 on every host, not perf=fast's choice by the CPU (an interpolation here)
            assert OmegaConf.to_container(cfg.trainer)["precision"] == "32-true"
            jobs += 1
    # 4 seeds + 4 losses + 2 encoder-decoders + 3 patch sizes + 3 photo -> labels + CycleGAN
    # and U-GAT-IT + 1 recipe seed
    assert jobs == 19
    evaluations = [c for c in commands if c[:2] == ["-m", "pix2pix_lit.evaluate"]]
    assert evaluations == []  # no job folder was written by the stand-in: nothing to score
    assert sorted(p.name for p in log_dir.glob("*.done")) == sorted(f"{s}.done" for s in STAGES)

    record.unlink()
    assert run_script(python, log_dir).returncode == 0
    assert not record.exists()  # every stage was done: the rerun starts nothing


def test_a_finished_job_is_scored_once_on_its_final_weights(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    python, record = recorded
    log_dir = tmp_path / "runs"
    for job in ("0", "1", "2"):
        (log_dir / "patch" / job).mkdir(parents=True)
        if job != "2":  # job 2 is still training (or failed): no final_metrics.json
            (log_dir / "patch" / job / "final_metrics.json").write_text("{}")
    (log_dir / "patch" / "1" / "evaluate").mkdir()
    (log_dir / "patch" / "1" / "evaluate" / "metrics.json").write_text("{}")
    assert run_script(python, log_dir, STAGES="patch").returncode == 0
    commands = [c[1:] for c in map(json.loads, record.read_text().splitlines())]
    assert commands[1:] == [
        ["pix2pix_lit.evaluate", f"ckpt_path={log_dir}/patch/0/checkpoints/last.ckpt",
         f"output_dir={log_dir}/patch/0/evaluate", "overwrite=true",
         "segmenter_ckpt=segmenter.ckpt"],
        # then the stage's records, once for the scoring pass that evaluated something
        ["pix2pix_lit.report", f"{log_dir}/patch", "--keep-records", f"{tmp_path}/records/patch"],
    ]  # fmt: skip
    assert commands[0][0] == "pix2pix_lit.train"  # the sweep, before


def test_the_checkpoints_kept_along_the_way_are_scored_too(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    python, record = recorded
    log_dir = tmp_path / "runs"
    checkpoints = log_dir / "recipe" / "0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (log_dir / "recipe" / "0" / "final_metrics.json").write_text("{}")
    for name in ("best_epoch005.ckpt", "epoch019.ckpt", "last.ckpt"):
        (checkpoints / name).write_bytes(b"")
    assert run_script(python, log_dir, STAGES="recipe").returncode == 0
    scored = [
        c[3].removeprefix("output_dir=")
        for c in map(json.loads, record.read_text().splitlines())
        if "pix2pix_lit.evaluate" in c
    ]
    assert scored == [
        f"{log_dir}/recipe/0/evaluate",
        f"{checkpoints}/best_epoch005_evaluate",  # the best callback's (every 5th: reference)
        f"{checkpoints}/epoch019_evaluate",  # callbacks.periodic_checkpoint's
    ]


def test_a_job_is_scored_as_soon_as_it_finishes_while_the_sweep_goes_on(tmp_path: Path) -> None:
    # a stand-in sweep: job 0 finishes, job 1 trains for a second more
    record = tmp_path / "commands.jsonl"
    python = tmp_path / "python"
    python.write_text(
        f"#!{sys.executable}\nimport json, sys, time\nfrom pathlib import Path\n"
        f"log = open({str(record)!r}, 'a')\n"
        "if sys.argv[2] == 'pix2pix_lit.train':\n"
        "    folder = Path(next(a for a in sys.argv if a.startswith('hydra.sweep.dir='))[16:])\n"
        "    for job in ('0', '1'):\n"
        "        (folder / job).mkdir(parents=True, exist_ok=True)\n"
        "        if job == '1':\n"
        "            time.sleep(1.5)\n"
        "        (folder / job / 'final_metrics.json').write_text('{}')\n"
        "    log.write(json.dumps(['sweep ended']) + '\\n')\n"
        "else:\n"
        "    log.write(json.dumps(sys.argv[3:5]) + '\\n')\n"
        f"{WRITE_METRICS_JSON}"
    )
    python.chmod(0o755)
    log_dir = tmp_path / "runs"
    assert run_script(python, log_dir, STAGES="loss").returncode == 0
    events = [json.loads(line) for line in record.read_text().splitlines()]
    evaluate = [f"ckpt_path={log_dir}/loss/{{}}/checkpoints/last.ckpt",
                f"output_dir={log_dir}/loss/{{}}/evaluate"]  # fmt: skip
    records = [f"{log_dir}/loss", "--keep-records"]
    assert events == [
        [part.format("0") for part in evaluate],  # while job 1 still trains
        records,
        ["sweep ended"],
        [part.format("1") for part in evaluate],
        records,
    ]


def test_a_second_script_on_the_same_log_dir_is_refused(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    python, record = recorded
    log_dir = tmp_path / "runs"
    log_dir.mkdir()
    with open(log_dir / ".long_runs.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the first script holds it while it runs
        result = run_script(python, log_dir)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: another long_runs.sh is running on LOG_DIR={log_dir}; wait for it or stop it"
    )
    assert not record.exists()
    assert run_script(python, log_dir).returncode == 0  # released: it runs


def test_an_unknown_stage_is_refused_before_anything_runs(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    python, record = recorded
    result = run_script(python, tmp_path / "runs", STAGES="loss losses")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: unknown stage 'losses' in STAGES; valid: " + " ".join(STAGES)
    )
    assert not record.exists()


def test_without_segmenter_one_is_trained_first_and_its_best_checkpoint_scores(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    python, record = recorded
    log_dir = tmp_path / "runs"
    finished_job(log_dir / "loss" / "0")
    # the segmenter's training left nothing: one line naming its log, nothing scored
    result = run_script(python, log_dir, STAGES="loss", SEGMENTER="")
    assert result.returncode == 1
    assert f"{log_dir}/segmenter.log, or give SEGMENTER=" in result.stderr
    trained = [json.loads(line) for line in record.read_text().splitlines()]
    assert [c[:3] for c in trained] == [["-m", "pix2pix_lit.train", "task=segmenter"]]
    # as it leaves it: the best by validation kept beside last.ckpt, which is not the one used
    checkpoints = log_dir / "segmenter" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("best_epoch025.ckpt", "last.ckpt"):
        (checkpoints / name).write_bytes(b"")
    record.unlink()
    assert run_script(python, log_dir, STAGES="loss", SEGMENTER="").returncode == 0
    commands = [json.loads(line) for line in record.read_text().splitlines()]
    assert not any("task=segmenter" in c for c in commands)  # trained once
    (evaluation,) = [c for c in commands if "pix2pix_lit.evaluate" in c]
    assert evaluation[-1] == f"segmenter_ckpt={checkpoints}/best_epoch025.ckpt"
    # trained again (its .done removed): its record is kept beside the stages'
    (log_dir / "segmenter.done").unlink()
    record.unlink()
    assert run_script(python, log_dir, STAGES="loss", SEGMENTER="").returncode == 0
    commands = [json.loads(line)[1:] for line in record.read_text().splitlines()]
    assert commands[:2] == [
        ["pix2pix_lit.train", *commands[0][1:]],
        ["pix2pix_lit.report", f"{log_dir}/segmenter", "--keep-records", f"{tmp_path}/records"],
    ]


def test_photo_to_labels_alone_trains_no_segmenter_and_scores_with_the_palette(
    recorded: tuple[Path, Path], tmp_path: Path
) -> None:
    python, record = recorded
    log_dir = tmp_path / "runs"
    finished_job(log_dir / "photo2labels" / "0")
    result = run_script(python, log_dir, STAGES="photo2labels", SEGMENTER="")
    assert result.returncode == 0, result.stderr
    commands = [json.loads(line)[1:] for line in record.read_text().splitlines()]
    assert not any("task=segmenter" in c for c in commands)
    (evaluation,) = [c for c in commands if c[0] == "pix2pix_lit.evaluate"]
    assert evaluation == [
        "pix2pix_lit.evaluate", f"ckpt_path={log_dir}/photo2labels/0/checkpoints/last.ckpt",
        f"output_dir={log_dir}/photo2labels/0/evaluate", "overwrite=true",
    ]  # fmt: skip
    # the three rows at once on the two cores
    (sweep,) = [c for c in commands if c[:2] == ["pix2pix_lit.train", "-m"]]
    assert "hydra.callbacks.device_slots.cpu_jobs=3" in sweep
