"""The sweep report: run folders → markdown table, figure and a study README's results block."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

pytest.importorskip("matplotlib")  # the report's figure (pip install 'pix2pix-lit[report]')

from pix2pix_lit.report import main
from pix2pix_lit.reporting.figure import trailing_mean
from pix2pix_lit.reporting.jobs import load_job
from pix2pix_lit.reporting.seeds import is_seed
from pix2pix_lit.reporting.table import (
    BEGIN_MARKER,
    END_MARKER,
    FIGURE_FILE,
    UNLOGGED_WALL_TIME,
)

HEADER = "epoch,step,train/G_L1_step,train/G_GAN_step,train/D_real_step,train/D_fake_step,"
HEADER += "train/G_L1_epoch,train/G_GAN_epoch,train/D_real_epoch,train/D_fake_epoch,"
HEADER += "val/L1,val/PSNR,val/SSIM"


def make_job(
    sweep: Path,
    num: int,
    overrides: list[str],
    val_l1: list[float],
    seconds: float = 75.0,
    finished: bool = True,
) -> Path:
    """A job's folder as the training entry point leaves it (``finished``: at the end)."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (job / ".hydra" / "config.yaml").write_text("seed: 42\n")
    rows = [HEADER]
    for epoch, l1 in enumerate(val_l1):
        step = 10 * epoch + 9
        rows.append(f"{epoch},{step - 5},0.5,0.9,0.6,0.7,,,,,,,")
        rows.append(f"{epoch},{step},,,,,,,,,{l1},{20 + epoch},0.{5 + epoch}")
        rows.append(f"{epoch},{step},,,,,0.4{epoch},0.8,0.6,0.7,,,")
    (job / "csv").mkdir()
    (job / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    resolved = f"trainer:\n  precision: bf16-mixed\npaths:\n  output_dir: {job.absolute()}\n"
    (job / "csv" / "hparams.yaml").write_text(resolved)
    if finished:
        (job / "final_metrics.json").write_text("{}")
    start = (job / ".hydra" / "config.yaml").stat().st_mtime
    os.utime(job / "csv" / "metrics.csv", (start + seconds, start + seconds))
    (job / "checkpoints").mkdir()
    (job / "checkpoints" / "last.ckpt").write_bytes(b"")
    best = int(np.argmin(val_l1))
    (job / "checkpoints" / f"best_epoch{best:03d}.ckpt").write_bytes(b"")
    (job / "images").mkdir()
    for epoch in range(len(val_l1)):
        pixels = np.full((36, 54, 3), 40 * epoch, dtype=np.uint8)
        Image.fromarray(pixels).save(job / "images" / f"epoch_{epoch:03d}.png")
    return job


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "multiruns" / "2026-01-01_00-00-00_000000"
    shared = ["data=facades", "trainer.max_epochs=2"]
    make_job(sweep, 0, [*shared, "loss.lambda_l1=0"], [0.5, 0.45])
    job = make_job(sweep, 1, [*shared, "loss.lambda_l1=100"], [0.3, 0.35], seconds=125)
    (job / "eval").mkdir()
    scores = {
        "metrics": {"L1": 0.3, "pixel_accuracy": 0.61, "class_accuracy": 0.25, "mean_IoU": 0.18}
    }
    (job / "eval" / "metrics.json").write_text(json.dumps(scores))
    # a job that died before logging anything
    (sweep / "2" / ".hydra").mkdir(parents=True)
    overrides = "".join(f"- {o}\n" for o in [*shared, "loss.lambda_l1=10"])
    (sweep / "2" / ".hydra" / "overrides.yaml").write_text(overrides)
    (sweep / "multirun.yaml").write_text("{}\n")
    return sweep


def test_report_table_has_one_row_per_job(sweep: Path, capsys: pytest.CaptureFixture) -> None:
    main([str(sweep)])
    table = (sweep / "report.md").read_text()
    assert table == capsys.readouterr().out.split("\nwrote ")[0]
    lines = table.splitlines()
    assert lines[0] == "Shared overrides: `data=facades trainer.max_epochs=2`"
    header = [c.strip() for c in lines[2].strip("|").split("|")]
    assert header[:3] == ["job", "overrides", "epochs"]
    for column in ("G_L1", "D_fake", "val/L1", "val/PSNR", "val/SSIM", "wall time"):
        assert column in header
    assert "pixel_accuracy (eval)" in header and "mean_IoU (eval)" in header
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
        for line in lines[4:7]
    }
    assert list(rows) == ["0", "1", "2"]
    cell = dict(zip(header, rows["1"], strict=True))
    assert cell["overrides"] == "`loss.lambda_l1=100`"
    assert (cell["epochs"], cell["val/L1"], cell["best val/L1"]) == ("2", "0.35", "0.3")
    assert (cell["G_L1"], cell["pixel_accuracy (eval)"], cell["wall time"]) == (
        "0.41",
        "0.61",
        "2:05\\*",  # these runs logged no time/elapsed_s: the span of their files, marked
    )
    assert lines[7:] == ["", UNLOGGED_WALL_TIME]
    assert cell["best checkpoint"] == "`best_epoch000.ckpt`"
    failed = dict(zip(header, rows["2"], strict=True))
    assert failed["epochs"] == "no metrics" and failed["val/L1"] == "–"


def test_report_figure_shows_each_jobs_last_samples_and_curves(sweep: Path) -> None:
    assert load_job(sweep / "0").sample.name == "epoch_001.png"
    main([str(sweep), "--out", str(sweep / "out")])
    figure = Image.open(sweep / "out" / FIGURE_FILE)
    # the samples' row is as high as the images at their width, above the curves
    assert figure.width == 1600 and 400 < figure.height < 1000
    assert (sweep / "out" / FIGURE_FILE).stat().st_size < 500_000


def test_report_rewrites_a_readmes_results_block(sweep: Path, tmp_path: Path) -> None:
    readme = tmp_path / "study" / "README.md"
    readme.parent.mkdir()
    readme.write_text(
        f"# Study\n\nintro\n\n{BEGIN_MARKER}\nthe previous results\n{END_MARKER}\n\nnotes\n"
    )
    for _ in range(2):  # regenerating replaces the block again
        main([str(sweep), "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("# Study\n\nintro\n\n") and text.endswith("\n\nnotes\n")
    assert "the previous results" not in text and text.count(BEGIN_MARKER) == 1
    assert "`loss.lambda_l1=100`" in text and f"![samples and curves]({FIGURE_FILE})" in text
    assert (readme.parent / FIGURE_FILE).is_file()


def test_report_errors_name_the_folder_or_the_markers(tmp_path: Path, sweep: Path) -> None:
    with pytest.raises(SystemExit, match=f"{tmp_path} holds no run folders"):
        main([str(tmp_path)])
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit, match=r"needs exactly one <!-- report:begin -->"):
        main([str(sweep), "--readme", str(readme)])


def test_absolute_paths_in_overrides_are_written_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "shared" / "data"
    job = make_job(tmp_path / "sweep", 0, [f"paths.data_dir={data}", "loss.lambda_l1=100"], [0.3])
    monkeypatch.chdir(tmp_path / "sweep")
    assert load_job(job).overrides == [
        f"paths.data_dir={os.path.join('..', 'shared', 'data')}",
        "loss.lambda_l1=100",
    ]


def write_evaluation(
    job: Path, folder: str, epoch: int | None, trained: int | None = None, **scores: float
) -> None:
    """An ``evaluate`` run's metrics.json inside the job (``epoch``: the checkpoint's;
    ``trained``: its whole epochs, when recorded)."""
    (job / folder).mkdir(parents=True)
    written: dict = {"checkpoint_epoch": epoch, "metrics": scores}
    if trained is not None:
        written["checkpoint_epochs_trained"] = trained
    (job / folder / "metrics.json").write_text(json.dumps(written))


def table_rows(table: str, title: str) -> list[dict[str, str]]:
    """The rows of the table under ``title`` in a report, as {column: cell}."""
    lines = table.split(title, 1)[1].split("\n\n")[1].splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]


def test_jobs_that_differ_only_in_seed_form_one_row_with_mean_and_spread(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for num, (seed, l1, ssim) in enumerate([(0, 0.3, 0.2), (1, 0.35, 0.22), (2, 0.4, 0.24)]):
        job = make_job(sweep, num, ["model=unet128", f"seed={seed}"], [0.5, l1])
        write_evaluation(job, "evaluate", 1, SSIM=ssim, **{"FCN/pixel_accuracy": 0.5})
    make_job(sweep, 3, ["model=encdec256", "seed=0"], [0.6, 0.45])
    main([str(sweep)])
    table = (sweep / "report.md").read_text()
    assert [row["job"] for row in table_rows(table, "No shared overrides.")] == ["0", "1", "2", "3"]
    unet, encdec = table_rows(table, "Across seeds")
    assert (unet["overrides"], unet["seeds"], unet["epochs"]) == ("`model=unet128`", "0 1 2", "2")
    assert unet["val/L1"] == "0.35 ± 0.05" and unet["SSIM (eval)"] == "0.22 ± 0.02"
    assert unet["FCN/pixel_accuracy (eval)"] == "0.5 ± 0"
    assert (encdec["seeds"], encdec["val/L1"], encdec["SSIM (eval)"]) == ("0", "0.45", "–")
    assert "along the way" not in table  # one evaluation per job: no learning curve


def test_seeds_still_running_are_marked_left_out_of_the_mean_and_named(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for num, l1 in enumerate([[0.5, 0.3, 0.2], [0.5, 0.3, 0.4], [0.5, 0.1], [0.5, 0.3, 0.3]]):
        job = make_job(sweep, num, [f"seed={num}"], l1, finished=num != 2)
        if num < 2:
            write_evaluation(job, "evaluate", len(l1) - 1, SSIM=0.2 + num / 10)
    # seed 3 finished, but only its checkpoint after 2 epochs is scored yet
    write_evaluation(sweep / "3", "checkpoints/best_epoch001_evaluate", 1, SSIM=0.9)
    main([str(sweep)])
    jobs = table_rows((sweep / "report.md").read_text(), "No shared overrides.")
    assert [job["epochs"] for job in jobs] == ["3", "3", "2 (unfinished)", "3"]
    assert [job["epochs (eval)"] for job in jobs] == ["3", "3", "–", "2"]
    (row,) = table_rows((sweep / "report.md").read_text(), "Across seeds")
    assert (row["seeds"], row["epochs"]) == ("0 1 3; left out, fewer epochs: 2 (2)", "3")
    assert row["val/L1"] == "0.3 ± 0.1"  # seed 2's 0.1 after 2 epochs is not in it
    assert row["SSIM (eval)"] == "0.25 ± 0.071 (n=2)"  # not seed 3's 0.9 after 2 epochs


def test_the_trend_of_a_long_curve_is_its_trailing_mean() -> None:
    assert trailing_mean([1.0, 3.0, 5.0, 7.0, 0.0], 3) == [1.0, 2.0, 3.0, 5.0, 4.0]
    assert trailing_mean([2.0, 4.0], 1) == [2.0, 4.0]


def test_jobs_of_several_sweeps_are_named_by_their_sweep_folder(tmp_path: Path) -> None:
    # each sweep numbers its jobs from 0: a bare number would name two jobs
    for study in ("reference", "loss"):
        make_job(tmp_path / study, 0, [f"experiment={study}", "seed=0"], [0.5, 0.4])
    main([str(tmp_path / "reference"), str(tmp_path / "loss"), "--out", str(tmp_path)])
    rows = table_rows((tmp_path / "report.md").read_text(), "Shared overrides")
    assert [row["job"] for row in rows] == ["reference/0", "loss/0"]


def test_a_seed_is_told_by_its_key_however_the_override_sets_it() -> None:
    seeds = ["seed=1", "+seed=1", "++seed=1", "~seed"]
    assert all(is_seed(o) for o in seeds)
    assert not any(is_seed(o) for o in ["seeds=1", "data.seed=1", "tags=[seed=1]"])


def test_a_sweep_of_one_seed_each_has_no_seed_table(sweep: Path) -> None:
    main([str(sweep)])
    assert "Across seeds" not in (sweep / "report.md").read_text()


def test_checkpoints_evaluated_along_the_way_give_a_learning_curve(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for num, seed in enumerate((0, 1)):
        job = make_job(sweep, num, [f"seed={seed}"], [0.5, 0.4, 0.35])
        # listed before the others, so only the epochs put it in training order
        write_evaluation(job, "a_final", 2, SSIM=0.3 + seed / 100)
        write_evaluation(job, "checkpoints/best_epoch000_evaluate", 0, SSIM=0.1)
        write_evaluation(job, "checkpoints/best_epoch002_evaluate", 2, SSIM=0.3 + seed / 100)
        write_evaluation(job, "z_middle", 1, SSIM=0.2 + seed / 10)
        for epoch in (0, 1):  # kept every epoch (save_top_k=-1), beside make_job's best
            (job / "checkpoints" / f"best_epoch{epoch:03d}.ckpt").write_bytes(b"")
    job = load_job(sweep / "0")
    assert [e.epochs_trained for e in job.evaluations] == [1, 2, 3]  # last.ckpt counted once
    assert job.final_scores == {"SSIM": 0.3}
    # at the last logged step of each checkpoint's epoch, on the loss curves' axis
    assert job.series("eval/SSIM") == [(9, 0.1), (19, 0.2), (29, 0.3)]
    main([str(sweep)])
    (row, _) = table_rows((sweep / "report.md").read_text(), "No shared overrides.")
    assert row["best checkpoint"] == "3 kept, `best_epoch000.ckpt` … `best_epoch002.ckpt`"
    curve = table_rows((sweep / "report.md").read_text(), "along the way")
    assert [(r["epochs"], r["seeds"], r["SSIM (eval)"]) for r in curve] == [
        ("1", "2", "0.1 ± 0"),
        ("2", "2", "0.25 ± 0.071"),
        ("3", "2", "0.305 ± 0.0071"),
    ]


def test_a_mid_epoch_checkpoint_is_the_final_score_but_not_on_the_learning_curve(
    tmp_path: Path,
) -> None:
    sweep = tmp_path / "sweep"
    job = make_job(sweep, 0, ["seed=0"], [0.5, 0.4, 0.35], finished=False)
    write_evaluation(job, "checkpoints/best_epoch000_evaluate", 0, trained=1, SSIM=0.1)
    write_evaluation(job, "checkpoints/best_epoch001_evaluate", 1, trained=2, SSIM=0.2)
    write_evaluation(job, "evaluate", 2, trained=2, SSIM=0.25)  # stopped inside epoch 2
    loaded = load_job(job)
    assert [(e.epochs_trained, e.at_epoch_end) for e in loaded.evaluations] == [
        (1, True),
        (2, True),
        (2, False),
    ]
    assert loaded.final_scores == {"SSIM": 0.25}
    main([str(sweep)])
    (row,) = table_rows((sweep / "report.md").read_text(), "Shared overrides")
    assert (row["epochs (eval)"], row["SSIM (eval)"]) == ("2 (mid-epoch)", "0.25")
    curve = table_rows((sweep / "report.md").read_text(), "along the way")
    assert [(r["epochs"], r["SSIM (eval)"]) for r in curve] == [("1", "0.1"), ("2", "0.2")]


def test_wall_time_is_the_runs_own_count_over_its_sessions(tmp_path: Path) -> None:
    # resumed days later: the folder's files span the gap, the logged count does not
    job = make_job(tmp_path / "sweep", 0, ["seed=0"], [0.4, 0.3], seconds=3 * 86400)
    unlogged = load_job(job)  # a run from before time/elapsed_s
    assert (unlogged.wall_time_s, unlogged.wall_time_logged) == (3 * 86400, False)
    csv_file = job / "csv" / "metrics.csv"
    lines = csv_file.read_text().splitlines()
    epoch_ends = [i for i, line in enumerate(lines) if i and line.split(",")[6]]  # G_L1_epoch
    lines = [
        f"{line},time/elapsed_s"
        if i == 0
        else f"{line},{3150.0 * (epoch_ends.index(i) + 1)}"
        if i in epoch_ends
        else f"{line},"
        for i, line in enumerate(lines)
    ]
    csv_file.write_text("\n".join(lines) + "\n")
    assert load_job(job).wall_time_s == 6300.0
    main([str(tmp_path / "sweep")])
    (row,) = table_rows((tmp_path / "sweep" / "report.md").read_text(), "Shared overrides")
    assert row["wall time"] == "1:45:00"
    assert UNLOGGED_WALL_TIME not in (tmp_path / "sweep" / "report.md").read_text()


def test_a_jobs_record_gives_the_same_report_once_its_run_folder_is_gone(
    sweep: Path, tmp_path: Path
) -> None:
    checkpoint = sweep / "1" / "checkpoints" / "last.ckpt"
    written = {"ckpt_path": str(checkpoint), "checkpoint_epoch": 1, "metrics": {"SSIM": 0.3},
               "per_image": [{"name": "1", "SSIM": 0.3}]}  # fmt: skip
    (sweep / "1" / "evaluate").mkdir()
    (sweep / "1" / "evaluate" / "metrics.json").write_text(json.dumps(written))
    records = tmp_path / "records"
    main([str(sweep), "--keep-records", str(records)])
    main([str(records), "--out", str(tmp_path / "again")])
    assert (tmp_path / "again" / "report.md").read_text() == (sweep / "report.md").read_text()
    kept = sorted(str(p.relative_to(records)) for p in records.rglob("*") if p.is_file())
    assert kept == [
        "0/.hydra/config.yaml", "0/.hydra/overrides.yaml", "0/csv/hparams.yaml",
        "0/csv/metrics.csv", "0/final_metrics.json", "0/images/epoch_001.png",
        "0/kept_checkpoints.txt",
        "1/.hydra/config.yaml", "1/.hydra/overrides.yaml", "1/csv/hparams.yaml",
        "1/csv/metrics.csv", "1/eval/metrics.json", "1/evaluate/metrics.json", "1/final_metrics.json",
        "1/images/epoch_001.png", "1/kept_checkpoints.txt",
        "2/.hydra/overrides.yaml",
    ]  # fmt: skip
    # the precision the run resolved (perf=fast's is an interpolation in .hydra/config.yaml)
    resolved = OmegaConf.load(records / "0" / "csv" / "hparams.yaml")
    assert (resolved.trainer.precision, resolved.paths.output_dir) == ("bf16-mixed", ".")
    # the record names no folder of the machine the run was on
    recorded = json.loads((records / "1" / "evaluate" / "metrics.json").read_text())
    assert recorded == {**written, "ckpt_path": os.path.join("checkpoints", "last.ckpt")}
    assert not any(str(tmp_path) in p.read_text() for p in records.rglob("*.[jy]*"))
    # kept again: the record is replaced whole, nothing of the earlier one left over
    (records / "1" / "images" / "epoch_000.png").write_bytes(b"")
    main([str(sweep), "--keep-records", str(records)])
    assert not (records / "1" / "images" / "epoch_000.png").exists()
    shutil.rmtree(records / "2")
    (records / "2").mkdir()
    with pytest.raises(SystemExit, match=f"{records / '2'} exists and is not a job's record"):
        main([str(sweep), "--keep-records", str(records)])


def test_a_segmenters_scores_are_columns_and_its_test_after_training_is_not_an_epoch(
    tmp_path: Path,
) -> None:
    job = tmp_path / "segmenter"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- task=segmenter\n- test=true\n")
    (job / ".hydra" / "config.yaml").write_text("seed: 42\n")
    (job / "csv").mkdir()
    labels = ("pixel_accuracy", "class_accuracy", "mean_IoU")
    header = [
        "epoch",
        "step",
        "train/CE_epoch",
        *(f"{s}/{k}" for s in ("val", "test") for k in labels),
    ]
    rows = ["0,9,1.5,0.4,0.2,0.1,,,", "1,19,1.2,0.5,0.3,0.2,,,", "2,20,,,,,0.55,0.35,0.25"]
    (job / "csv" / "metrics.csv").write_text("\n".join([",".join(header), *rows]) + "\n")
    (job / "final_metrics.json").write_text("{}")
    main([str(job)])
    (row,) = table_rows((job / "report.md").read_text(), "Shared overrides")
    assert (row["epochs"], row["CE"], row["val/mean_IoU"]) == ("2", "1.2", "0.2")
    assert (row["test/pixel_accuracy"], row["test/mean_IoU"]) == ("0.55", "0.25")
