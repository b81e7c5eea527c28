"""The FCN-score's segmenter (task=segmenter) and the FCN-score itself."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from helpers import ONE_BATCH, TWO_CLASSES, compose_run, run_main, run_tiny, tiny_checkpoint
from pix2pix_lit import evaluate as evaluate_cli
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.metrics import class_indices
from pix2pix_lit.metrics.fcn_score import FCNScore, weights_sha256
from pix2pix_lit.metrics.labels import paint
from pix2pix_lit.networks import FCNSegmenter
from pix2pix_lit.tasks.segmenter import segmentation_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class FixedLabels(nn.Module):
    """A 'segmenter' that answers the given class map for any input (one-hot logits)."""

    def __init__(self, classes: Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer(
            "logits", nn.functional.one_hot(classes, num_classes).permute(0, 3, 1, 2).float()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.logits.expand(len(x), -1, -1, -1)


def test_segmentation_loss_is_per_pixel_cross_entropy() -> None:
    classes = torch.tensor([[[0, 1], [1, 1]]])
    logits = torch.zeros(1, 2, 2, 2)
    assert float(segmentation_loss(logits, classes)) == pytest.approx(math.log(2))
    logits[0, 1] = 1.0  # class 1 one logit ahead everywhere: right at 3 pixels, wrong at 1
    expected = (3 * math.log(1 + math.exp(-1)) + math.log(1 + math.e)) / 4
    assert float(segmentation_loss(logits, classes)) == pytest.approx(expected)


def test_fcn_segmenter_shapes_and_parameter_count() -> None:
    net = FCNSegmenter(out_channels=12, width=16)
    assert net(torch.zeros(2, 3, 64, 96)).shape == (2, 12, 64, 96)
    assert sum(p.numel() for p in net.parameters()) == 1_185_172
    with pytest.raises(ValueError, match="32"):
        net(torch.zeros(1, 3, 48, 48))


def test_weights_digest_names_the_weights_not_the_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = FCNSegmenter(out_channels=3, width=8)
    digest = weights_sha256(network)
    # the same weights saved with other things beside them (another run folder, timings)
    for name, extra in (("a.ckpt", {"dirpath": "/runs/a"}), ("b.ckpt", {"dirpath": "/b"})):
        torch.save({"state_dict": network.state_dict(), **extra}, tmp_path / name)
    files = {hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.ckpt", "b.ckpt")}
    assert len(files) == 2
    copy = FCNSegmenter(out_channels=3, width=8)
    copy.load_state_dict(torch.load(tmp_path / "b.ckpt")["state_dict"])
    assert weights_sha256(copy) == digest
    with torch.no_grad():  # one value in one buffer changed: another segmenter
        next(b for n, b in copy.named_buffers() if n.endswith("running_var"))[0] += 1e-6
    assert weights_sha256(copy) != digest


def test_paint_inverts_class_indices() -> None:
    classes = torch.tensor([[[0, 1, 1], [1, 0, 0]]])
    assert torch.equal(class_indices(paint(classes, TWO_CLASSES), TWO_CLASSES), classes)


def test_fcn_score_of_a_constructed_case() -> None:
    # 4x4 labels: left half class 0, right half class 1; the segmenter says class 0 everywhere
    # except one pixel of the right half. Confusion: [[8, 0], [7, 1]].
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[..., 2:] = 1
    predicted = torch.zeros_like(labels)
    predicted[0, 0, 3] = 1
    score = FCNScore(FixedLabels(predicted, 2), TWO_CLASSES)
    score.update(torch.zeros(1, 3, 4, 4), paint(labels, TWO_CLASSES))
    result = score.compute()
    assert result["FCN/pixel_accuracy"] == pytest.approx(9 / 16)
    assert result["FCN/class_accuracy"] == pytest.approx((1 + 1 / 8) / 2)
    assert result["FCN/IoU_sky"] == pytest.approx(8 / 15)
    assert result["FCN/IoU_wall"] == pytest.approx(1 / 8)
    assert result["FCN/mean_IoU"] == pytest.approx((8 / 15 + 1 / 8) / 2)


@pytest.fixture(scope="module")
def trained_segmenter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A tiny segmenter on the synthetic pairs (photo → label colours), tested at the end."""
    root = tmp_path_factory.mktemp("segmenter")
    metrics = run_tiny(
        root, "task=segmenter", *ONE_BATCH, "test=true", "logger=none", model=["model.width=4"]
    )
    return root / "run", metrics


def test_fcn_score_of_real_test_photos_equals_the_segmenters_test_scores(
    trained_segmenter: tuple[Path, dict[str, float]],
) -> None:
    run_dir, metrics = trained_segmenter
    best = next((run_dir / "checkpoints").glob("best_*.ckpt"))
    score = FCNScore.from_checkpoint(best)
    config = torch.load(best, map_location="cpu", weights_only=False)["pix2pix_lit_config"]
    datamodule = instantiate(config["data"])
    datamodule.setup("test")
    for batch in datamodule.test_dataloader():
        score.update(batch["A"], batch["B"])
    fcn = score.compute()
    for name in ("pixel_accuracy", "class_accuracy", "mean_IoU"):
        assert fcn[f"FCN/{name}"] == pytest.approx(metrics[f"test/{name}"], abs=1e-6), name
    assert json.loads((run_dir / "final_metrics.json").read_text())["test/mean_IoU"] >= 0


def test_a_translation_checkpoint_is_refused_as_segmenter(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with pytest.raises(ConfigError, match="not a segmenter checkpoint"):
        FCNScore.from_checkpoint(tiny_checkpoint(tmp_path_factory))
    with pytest.raises(ConfigError, match="does not exist"):
        FCNScore.from_checkpoint("missing.ckpt")


def test_evaluate_reports_the_fcn_score_with_a_segmenter_checkpoint(
    trained_segmenter: tuple[Path, dict[str, float]],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # Hydra's run folders go under ./logs
    generator = tiny_checkpoint(tmp_path_factory)
    segmenter = trained_segmenter[0] / "checkpoints/last.ckpt"
    out = tmp_path / "eval"
    args = (f"ckpt_path={generator}", f"output_dir={out}", f"segmenter_ckpt={segmenter}")
    assert run_main(evaluate_cli.main, *args) is None
    report = json.loads((out / "metrics.json").read_text())
    # the scores name the segmenter they are from, by path and by content
    assert report["segmenter_ckpt"] == str(segmenter.resolve())
    assert report["segmenter_sha256"] == hashlib.sha256(segmenter.read_bytes()).hexdigest()
    loaded = FCNScore.from_checkpoint(segmenter).network
    assert report["segmenter_weights_sha256"] == weights_sha256(loaded)
    metrics = report["metrics"]
    assert {"L1", "SSIM", "FCN/pixel_accuracy", "FCN/mean_IoU", "FCN/IoU_window"} <= set(metrics)
    assert 0 <= metrics["FCN/pixel_accuracy"] <= 1


def test_segmenter_config_reads_photos_and_keeps_the_test_split_out_of_selection(
    tmp_path: Path,
) -> None:
    cfg = compose_run(["task=segmenter"], tmp_path)
    assert (cfg.data.direction, cfg.data.val_fallback, cfg.data.crop_size) == ("AtoB", 40, 128)
    checkpoint = cfg.callbacks.model_checkpoint
    assert (checkpoint.monitor, checkpoint.mode) == ("val/mean_IoU", "max")
    assert cfg.task.palette.name == "facades" and len(cfg.task.palette.classes) == 12
