"""Image, label-map and distribution metrics on constructed cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from helpers import TWO_CLASSES, paint
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.metrics import (
    PSNR_CAP_DB,
    DistributionScores,
    Palette,
    class_indices,
    confusion_matrix,
    image_scores,
    label_scores,
    per_class_scores,
)
from pix2pix_lit.metrics import fid as fid_module
from pix2pix_lit.metrics.image import MS_SSIM_MIN_SIZE

# -- image metrics -----------------------------------------------------------------------


def test_identical_images_score_perfectly_with_psnr_capped() -> None:
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    scores = image_scores(images, images.clone())
    assert torch.equal(scores.scores["L1"], torch.zeros(3))
    assert torch.equal(scores.scores["PSNR"], torch.full((3,), PSNR_CAP_DB))
    assert scores.scores["SSIM"] == pytest.approx([1.0] * 3, abs=1e-6)


def test_l1_and_psnr_of_a_constant_offset() -> None:
    target = torch.zeros(2, 3, 16, 16)
    scores = image_scores(target + 0.2, target).scores
    # 0.2 in [-1, 1] is 0.1 in [0, 1]: MSE 0.01, PSNR = 10 log10(1 / 0.01) = 20 dB
    assert scores["L1"] == pytest.approx([0.2, 0.2])
    assert scores["PSNR"] == pytest.approx([20.0, 20.0], abs=1e-4)


def test_scores_are_per_image() -> None:
    target = torch.zeros(2, 3, 16, 16)
    output = torch.stack([target[0], target[1] + 0.5])
    scores = image_scores(output, target).scores
    assert scores["L1"].tolist() == pytest.approx([0.0, 0.5])
    assert scores["PSNR"][0] == PSNR_CAP_DB and scores["PSNR"][1] < 20


def test_ms_ssim_needs_176_pixels_and_says_so_below() -> None:
    small = torch.rand(1, 3, 64, 64) * 2 - 1
    result = image_scores(small, small)
    assert "MS-SSIM" not in result.scores
    assert "176x176" in result.unavailable["MS-SSIM"] and "64x64" in result.unavailable["MS-SSIM"]
    large = torch.rand(1, 3, MS_SSIM_MIN_SIZE, MS_SSIM_MIN_SIZE) * 2 - 1
    result = image_scores(large, large)
    assert result.unavailable == {}
    assert float(result.scores["MS-SSIM"][0]) == pytest.approx(1.0, abs=1e-5)
    assert float(image_scores(large, -large).scores["MS-SSIM"][0]) < 0.5


# -- label metrics -----------------------------------------------------------------------


def test_palette_colours_map_back_to_their_classes_even_when_perturbed() -> None:
    classes = torch.randint(0, 2, (2, 8, 8))
    images = paint(classes, TWO_CLASSES)
    assert torch.equal(class_indices(images, TWO_CLASSES), classes)
    noisy = (images + 0.2 * (torch.rand_like(images) - 0.5)).clamp(-1, 1)  # ±13 grey levels
    assert torch.equal(class_indices(noisy, TWO_CLASSES), classes)


def test_a_label_map_against_itself_scores_one() -> None:
    classes = torch.randint(0, 2, (8, 8))
    scores = label_scores(confusion_matrix(classes, classes, 2))
    assert scores == {"pixel_accuracy": 1.0, "class_accuracy": 1.0, "mean_IoU": 1.0}


def test_two_class_case_with_known_confusion() -> None:
    target = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    predicted = torch.tensor([0, 0, 0, 1, 1, 1, 0, 0])
    confusion = confusion_matrix(predicted, target, 2)
    assert confusion.tolist() == [[3, 1], [2, 2]]  # rows: target class, columns: predicted
    scores = label_scores(confusion)
    assert scores["pixel_accuracy"] == pytest.approx(5 / 8)
    assert scores["class_accuracy"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    # IoU(0) = 3 / (4 + 5 - 3), IoU(1) = 2 / (4 + 3 - 2)
    assert scores["mean_IoU"] == pytest.approx((3 / 6 + 2 / 5) / 2)


def test_absent_classes_class_accuracy_over_target_classes_iou_over_either() -> None:
    # 3 classes: 0 in target and prediction, 1 only predicted, 2 in neither
    target = torch.tensor([0, 0, 0, 0])
    predicted = torch.tensor([0, 0, 0, 1])
    per_class = per_class_scores(confusion_matrix(predicted, target, 3))
    assert per_class["accuracy"][0] == pytest.approx(3 / 4)
    assert math.isnan(per_class["accuracy"][1]) and math.isnan(per_class["accuracy"][2])
    assert per_class["IoU"].tolist()[:2] == pytest.approx([3 / 4, 0.0])
    assert math.isnan(per_class["IoU"][2])
    scores = label_scores(confusion_matrix(predicted, target, 3))
    assert scores["class_accuracy"] == pytest.approx(3 / 4)
    assert scores["mean_IoU"] == pytest.approx(3 / 8)


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ([{"name": "a", "color": [0, 0, 300]}], "class 'a' has colour \\[0, 0, 300\\]"),
        ([{"name": "a"}], "needs a name and a color"),
        ([], "at least one class"),
    ],
)
def test_bad_palettes_name_the_problem(classes: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Palette.from_config({"name": "mine", "classes": classes})


# -- FID / KID ---------------------------------------------------------------------------


class ChannelStats(nn.Module):
    """A stand-in for Inception: per-channel mean and std of uint8 images (6 features)."""

    num_features = 6

    def forward(self, images: Tensor) -> Tensor:
        x = images.float().flatten(2) / 255
        return torch.cat([x.mean(-1), x.std(-1)], dim=1)


def test_missing_torch_fidelity_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fid_module, "torch_fidelity_available", lambda: False)
    with pytest.raises(ConfigError, match=r"torch-fidelity.*pix2pix-lit\[fid\].*fid=false"):
        DistributionScores()


def test_missing_weights_file_names_fid_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fid_module, "torch_fidelity_available", lambda: True)
    with pytest.raises(ConfigError, match="fid_weights=/no/such.pth is not a file"):
        DistributionScores(weights_path="/no/such.pth")


def test_fid_and_kid_plumbing_with_a_stub_feature_extractor() -> None:
    torch.manual_seed(0)
    images = torch.rand(6, 3, 16, 16) * 2 - 1
    same = DistributionScores(feature=ChannelStats())
    same.update(images[:3], images[:3])
    same.update(images[3:], images[3:])
    scores, unavailable = same.compute()
    assert unavailable == {} and same.count == 6
    assert set(scores) == {"FID", "KID", "KID_std"}
    assert scores["FID"] == pytest.approx(0.0, abs=1e-4)

    shifted = DistributionScores(feature=ChannelStats())
    shifted.update((images * 0.5 + 0.4).clamp(-1, 1), images)
    assert shifted.compute()[0]["FID"] > 0.01


def test_fid_needs_two_images() -> None:
    scores = DistributionScores(feature=ChannelStats())
    scores.update(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    values, unavailable = scores.compute()
    assert values == {} and "at least 2 images" in unavailable["FID"]
