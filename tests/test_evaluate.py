"""Evaluation: exact scores on constructed cases, repeatable noise, outputs, CLI and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image
from torch import Tensor, nn

from helpers import ONE_BATCH, TWO_CLASSES, cli, paint, run_main, run_tiny, save_ab, tiny_checkpoint
from pix2pix_lit import evaluate as evaluate_cli
from pix2pix_lit.errors import DataError
from pix2pix_lit.inference import evaluation_report
from pix2pix_lit.inference.checkpoint import load_task
from pix2pix_lit.inference.evaluation import (
    data_config,
    evaluated_direction,
    is_facades_labels,
    load_palette,
    resolve_palette,
)
from pix2pix_lit.inference.evaluation_report import write_report
from pix2pix_lit.inference.scoring import evaluate
from pix2pix_lit.metrics import PSNR_CAP_DB
from pix2pix_lit.metrics.fid import torch_fidelity_available
from pix2pix_lit.tasks.base import TranslationTask

# -- shared by the entry-point tests -----------------------------------------------------


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


# -- constructed cases -------------------------------------------------------------------


class Identity(TranslationTask):
    """A task whose generator returns its input: outputs equal the A images."""

    def __init__(self) -> None:
        super().__init__(optimizer_g=torch.optim.Adam, optimizer_d=torch.optim.Adam)
        self.generator = nn.Identity()

    def translate(self, images: Tensor) -> Tensor:
        return self.generator(images)

    def translation_network(self) -> nn.Module:
        return self.generator


def batches(pairs: list[tuple[Tensor, Tensor]], batch_size: int = 2) -> list[dict]:
    """``{"A", "B", "A_path"}`` batches of the given (A, B) images, named 0000, 0001, ..."""
    out = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        out.append(
            {
                "A": torch.stack([a for a, _ in chunk]),
                "B": torch.stack([b for _, b in chunk]),
                "A_path": [f"/data/{start + i:04d}.png" for i in range(len(chunk))],
            }
        )
    return out


def test_identity_generator_on_identical_pairs_scores_perfectly(tmp_path: Path) -> None:
    images = torch.rand(5, 3, 32, 32) * 2 - 1
    result = evaluate(Identity(), batches([(x, x) for x in images]), tmp_path)
    assert result.count == 5
    # PSNR of identical images is infinite; it is capped (documented) so means stay finite.
    assert result.metrics["L1"] == 0.0 and result.metrics["PSNR"] == PSNR_CAP_DB
    assert result.metrics["SSIM"] == pytest.approx(1.0, abs=1e-6)
    assert "176x176" in result.unavailable["MS-SSIM"]
    assert [r["name"] for r in result.per_image] == ["0000", "0001", "0002", "0003", "0004"]


def test_label_maps_score_exactly_per_image_and_over_the_split(tmp_path: Path) -> None:
    target = torch.zeros(16, 16, dtype=torch.long)
    target[8:] = 1  # 128 pixels of each class
    predicted = torch.zeros(16, 16, dtype=torch.long)
    predicted[6:] = 1  # 32 class-0 pixels labelled 1: confusion [[96, 32], [0, 128]]
    maps = paint(torch.stack([target, predicted]), TWO_CLASSES)
    pairs = [(maps[0], maps[0]), (maps[1], maps[0])]  # identity: output = A, target = B
    result = evaluate(Identity(), batches(pairs), tmp_path, palette=TWO_CLASSES)

    perfect, confused = result.per_image
    assert {k: perfect[k] for k in ("pixel_accuracy", "class_accuracy", "mean_IoU")} == {
        "pixel_accuracy": 1.0,
        "class_accuracy": 1.0,
        "mean_IoU": 1.0,
    }
    assert confused["pixel_accuracy"] == pytest.approx(224 / 256)
    assert confused["class_accuracy"] == pytest.approx((96 / 128 + 1) / 2)
    assert confused["mean_IoU"] == pytest.approx((96 / 128 + 128 / 160) / 2)
    # The split's label scores come from the summed confusion [[224, 32], [0, 256]].
    assert result.metrics["pixel_accuracy"] == pytest.approx(480 / 512)
    assert result.metrics["class_accuracy"] == pytest.approx((224 / 256 + 1) / 2)
    assert result.metrics["mean_IoU"] == pytest.approx((224 / 256 + 256 / 288) / 2)
    assert result.per_class == {
        "sky": {"accuracy": pytest.approx(224 / 256), "IoU": pytest.approx(224 / 256)},
        "wall": {"accuracy": 1.0, "IoU": pytest.approx(256 / 288)},
    }


def test_report_is_strict_json_and_the_gallery_links_relative_images(tmp_path: Path) -> None:
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    result = evaluate(Identity(), batches([(x, x) for x in images]), tmp_path)
    path = write_report(tmp_path, result, {"ckpt_path": "x.ckpt", "seed": 0})
    report = json.loads(path.read_text())  # strict: allow_nan=False when written
    assert report["count"] == 2 and report["seed"] == 0 and report["psnr_cap_db"] == PSNR_CAP_DB
    assert report["per_image"][1]["name"] == "0001"
    page = (tmp_path / "index.html").read_text()
    for role in ("input", "output", "target"):
        assert f'src="images/0001_{role}.png"' in page
        assert (tmp_path / "images" / f"0001_{role}.png").is_file()


def test_an_empty_split_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no images"):
        evaluate(Identity(), [], tmp_path)


# -- configuration -----------------------------------------------------------------------


def test_data_overrides_apply_on_top_of_the_checkpoint_unless_a_group_replaces_it() -> None:
    stored = {"_target_": "Stored", "root": "/old", "direction": "AtoB", "test_split": "test"}
    merged = data_config(stored, {"split": "val", "root": "/new", "direction": None})
    assert merged == {
        "_target_": "Stored",
        "root": "/new",
        "direction": "AtoB",
        "test_split": "val",
    }
    replaced = data_config(stored, {"_target_": "Chosen", "root": "/x", "split": None})
    assert replaced == {"_target_": "Chosen", "root": "/x"}


def test_auto_palette_picks_facades_for_facades_photo_to_labels_only() -> None:
    auto = {"name": "auto", "classes": []}
    facades = resolve_palette(auto, {"root": "data/facades", "direction": "AtoB"})
    assert facades == load_palette("facades")
    assert resolve_palette(auto, {"root": "data/facades", "direction": "BtoA"}) is None
    assert resolve_palette(auto, {"root": "data/synthetic", "direction": "AtoB"}) is None
    assert not is_facades_labels({"root": "/x/facade_photos_only", "direction": "AtoB"})
    assert resolve_palette({"name": "none", "classes": []}, {"root": "data/facades"}) is None


# -- a trained checkpoint ----------------------------------------------------------------


def _outputs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("images/*_output.png"))]


def test_same_seed_gives_identical_outputs_in_the_paper_protocol(
    ckpt: Path, tmp_path: Path
) -> None:
    task = load_task(ckpt)
    assert task.inference == "paper"
    datamodule = instantiate(task.run_config["data"])
    datamodule.setup("test")
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        evaluate(task, datamodule.test_dataloader(), tmp_path / name, seed=seed)
    a, b, c = (_outputs(tmp_path / name) for name in "abc")
    assert len(a) == 4
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))  # dropout noise


def test_cli_writes_images_metrics_and_gallery(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = cli(
        f"ckpt_path={ckpt}", f"output_dir={out}", cwd=tmp_path, module="pix2pix_lit.evaluate"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "metrics.json").read_text())
    assert report["count"] == 4 and report["split"] == "test"
    assert (report["inference"], report["seed"]) == ("paper", 0)
    assert report["ckpt_path"] == str(ckpt.resolve())
    assert (report["checkpoint_epoch"], report["checkpoint_epochs_trained"]) == (0, 1)
    assert set(report["metrics"]) == {"L1", "PSNR", "SSIM"}
    assert 0 < report["metrics"]["L1"] < 2
    names = [r["name"] for r in report["per_image"]]
    assert len(names) == 4
    assert all(
        (out / "images" / f"{n}_{role}.png").is_file()
        for n in names
        for role in ("input", "output", "target")
    )
    page = (out / "index.html").read_text()
    assert f'src="images/{names[0]}_output.png"' in page


def test_existing_outputs_are_kept_unless_overwrite(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # Hydra's run folders go under ./logs
    out = tmp_path / "eval"
    args = (f"ckpt_path={ckpt}", f"output_dir={out}", "inference=standard")
    assert run_main(evaluate_cli.main, *args) is None
    message = run_main(evaluate_cli.main, *args)
    assert message is not None and message.startswith("error: ")
    assert f"output_dir={out}" in message and "overwrite=true" in message
    assert run_main(evaluate_cli.main, *args, "overwrite=true") is None
    assert json.loads((out / "metrics.json").read_text())["inference"] == "standard"
    # stopped midway: its images, no metrics.json (written last)
    (out / "metrics.json").unlink()
    message = run_main(evaluate_cli.main, *args)
    assert message is not None and "an evaluation stopped before it finished" in message
    assert run_main(evaluate_cli.main, *args, "overwrite=true") is None


def test_metrics_json_is_written_last_so_it_marks_a_finished_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    result = evaluate(Identity(), batches([(x, x) for x in images]), tmp_path)

    def stopped(*_: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation_report, "gallery_html", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_report(tmp_path, result, {"ckpt_path": "x.ckpt", "seed": 0})
    assert not (tmp_path / "metrics.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # no partial file either


# -- bad input ---------------------------------------------------------------------------


def test_missing_checkpoint_is_one_line_from_the_cli(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ckpt"
    result = cli(f"ckpt_path={missing}", cwd=tmp_path, module="pix2pix_lit.evaluate")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: ckpt_path={missing} ")
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_inputs_name_the_key_and_path(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    weights = tmp_path / "weights.ckpt"
    torch.save({"epoch": 3, "state_dict": {}}, weights)
    cases = {
        (): "ckpt_path is not set",
        (
            f"ckpt_path={tmp_path / 'nope.ckpt'}",
        ): f"ckpt_path={tmp_path / 'nope.ckpt'} does not exist",
        (f"ckpt_path={text}",): f"ckpt_path={text} is not a pix2pix_lit checkpoint",
        (f"ckpt_path={weights}",): "no 'pix2pix_lit_config' entry (its keys: epoch, state_dict)",
        (f"ckpt_path={ckpt}", "data.split=nope"): "data.split=nope",
        (f"ckpt_path={ckpt}", "inference=fast"): "inference='fast' is not one of paper, standard",
    }
    if not torch_fidelity_available():
        cases[(f"ckpt_path={ckpt}", "fid=true")] = "pip install 'pix2pix-lit[fid]'"
    for args, expected in cases.items():
        message = run_main(evaluate_cli.main, *args, f"output_dir={tmp_path / 'out'}")
        assert message is not None and message.startswith("error: "), args
        assert expected in message, (args, message)
        assert "\n" not in message


# -- which translation was evaluated -----------------------------------------------------


def test_the_evaluated_direction_composes_the_data_and_the_generator() -> None:
    assert evaluated_direction("AtoB", "AtoB") == "AtoB"
    assert evaluated_direction("AtoB", "BtoA") == "BtoA"  # CycleGAN's F on the data's B
    assert evaluated_direction("BtoA", "AtoB") == "BtoA"
    assert evaluated_direction("BtoA", "BtoA") == "AtoB"


@pytest.mark.usefixtures("one_torch_thread")
def test_metrics_name_the_direction_of_cyclegans_generator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cycle = ["task=cyclegan", "data=synthetic_unpaired", "data.image_size=32",
             "data.load_size=36", "data.crop_size=32", "data.num_images.train=4"]  # fmt: skip
    run_tiny(tmp_path, *cycle, *ONE_BATCH, "logger=none", model=["model.ngf=8", "model.n_blocks=1"])
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    for i, (args, expected) in enumerate((((), "AtoB"), (("direction=BtoA",), "BtoA"),
                                          (("direction=BtoA", "data.direction=BtoA"), "AtoB"))):  # fmt: skip
        out = tmp_path / f"eval{i}"
        assert run_main(evaluate_cli.main, f"ckpt_path={ckpt}", f"output_dir={out}", *args) is None
        assert json.loads((out / "metrics.json").read_text())["direction"] == expected, args


def test_a_bad_data_value_is_one_line(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data module's own check, raised inside its constructor, reaches the user as its one
    line (Hydra's instantiate would wrap it in an InstantiationException)."""
    monkeypatch.chdir(tmp_path)
    message = run_main(evaluate_cli.main, f"ckpt_path={ckpt}", "data.direction=CtoD")
    assert message == "error: data.direction='CtoD' is not valid; use one of AtoB, BtoA"


def test_native_size_images_are_brought_to_the_generators_rule(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With preprocess=none the 70x50 test pairs reach the U-Net (num_downs=6) resized to a
    multiple of 64, the rule validation uses, instead of failing its size check."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for i in range(2):
            save_ab(tmp_path / "pairs" / split / f"{i}.png",
                    rng.integers(0, 256, (70, 100, 3), dtype=np.uint8))  # fmt: skip
    out = tmp_path / "eval"
    message = run_main(evaluate_cli.main, f"ckpt_path={ckpt}", f"output_dir={out}", "data=folder",
                       f"data.root={tmp_path / 'pairs'}", "data.preprocess=none",
                       "data.num_workers=0", "data.persistent_workers=false")  # fmt: skip
    assert message is None, message
    assert json.loads((out / "metrics.json").read_text())["count"] == 2
    assert Image.open(out / "images" / "0_output.png").size == (64, 64)
