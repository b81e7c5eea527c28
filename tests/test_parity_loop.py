"""The plain reference loop of the parity study (experiments/parity/): its pipeline, its step
(equal to the framework's objective and step order), its schedule and its evaluation."""

from __future__ import annotations

import copy
import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import tiny_checkpoint
from pix2pix_lit.losses import Pix2PixObjective
from pix2pix_lit.networks import UnetGenerator
from pix2pix_lit.schedulers import LinearDecayFactor
from pix2pix_lit.tasks.pix2pix import update_step

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments/parity"))
from one_evaluation import generator_weights, score
from reference_loop import (
    ReferencePairs,
    build_networks,
    gan_loss,
    linear_decay_factor,
    reference_step,
    train,
)
from table import markdown

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write_pairs(folder: Path, count: int, size: int) -> Path:
    """A|B files whose halves are the same random image, so a shared crop/flip keeps them equal."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        half = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([half, half], 1)).save(folder / f"{i}.png")
    return folder


def test_gan_loss_is_bce_against_a_constant_map() -> None:
    logits = torch.tensor([[0.0, 2.0]])
    assert float(gan_loss(logits, True)) == pytest.approx(
        (math.log(2) + math.log(1 + math.exp(-2))) / 2
    )
    assert float(gan_loss(logits, False)) == pytest.approx(
        (math.log(2) + math.log(1 + math.exp(2))) / 2
    )


def test_pairs_share_one_crop_and_flip_and_resize_with_pil(tmp_path: Path) -> None:
    folder = _write_pairs(tmp_path / "train", 1, 40)
    pairs = ReferencePairs(folder, load_size=36, crop_size=32)
    random.seed(3)
    left, top, flip = random.randint(0, 4), random.randint(0, 4), random.random() > 0.5
    random.seed(3)
    x, y = pairs[0]
    assert torch.equal(x, y) and x.shape == (3, 32, 32)
    half = Image.open(folder / "0.png").crop((0, 0, 40, 40)).resize((36, 36), Image.BICUBIC)
    expected = half.crop((left, top, left + 32, top + 32))
    if flip:
        expected = expected.transpose(Image.FLIP_LEFT_RIGHT)
    assert torch.equal(x, torch.from_numpy(np.array(expected)).permute(2, 0, 1) / 127.5 - 1)


def test_reference_step_equals_the_framework_objective_and_step_order() -> None:
    """Halved D objective, D before G, one G(x) for both steps: same weights after a step."""
    torch.manual_seed(0)
    generator, discriminator = build_networks(num_downs=5)
    x, y = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    nets = {}
    for name in ("reference", "framework"):
        g, d = copy.deepcopy(generator), copy.deepcopy(discriminator)
        opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        torch.manual_seed(1)  # the same dropout masks
        if name == "reference":
            reference_step(g, d, opt_g, opt_d, x, y)
        else:
            update_step(g, d, Pix2PixObjective(), (opt_g, opt_d), x, y)
        nets[name] = (g, d)
    for ref, fw in zip(nets["reference"], nets["framework"], strict=True):
        for (key, a), b in zip(ref.state_dict().items(), fw.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, msg=key)
    changed = any(
        not torch.equal(a, b)
        for a, b in zip(generator.parameters(), nets["reference"][0].parameters(), strict=True)
    )
    assert changed


def test_linear_decay_matches_the_framework_schedule() -> None:
    rule, framework = linear_decay_factor(5, 5), LinearDecayFactor(5, 5)
    assert [rule(e) for e in range(10)] == [framework(e) for e in range(10)]
    assert rule(4) == 1.0 and rule(9) == pytest.approx(1 / 6)


def test_train_then_evaluate_runs_and_scores_repeatably(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _write_pairs(root / "train", 2, 40)
    _write_pairs(root / "test", 2, 32)
    generator = train(root, tmp_path / "run", seed=0, load_size=36, crop_size=32, max_steps=3)
    assert (tmp_path / "run/train_log.json").is_file()
    loaded, _ = build_networks(num_downs=5)
    loaded.load_state_dict(generator_weights(tmp_path / "run/generator.pth"))
    test_pairs = ReferencePairs(root / "test", 32, 32, train=False)
    first, again = score(loaded, test_pairs), score(generator, test_pairs)
    assert first == again and all(math.isfinite(v) for v in first.values())


def test_a_resumed_run_ends_with_the_uninterrupted_weights(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _write_pairs(root / "train", 3, 40)
    schedule = {"seed": 0, "load_size": 36, "crop_size": 32, "n_epochs": 1, "n_epochs_decay": 1}
    whole = train(root, tmp_path / "whole", **schedule)
    train(root, tmp_path / "split", max_steps=4, save_every=2, **schedule)
    resumed = train(root, tmp_path / "split", **schedule)
    for (key, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)


def test_framework_checkpoints_give_their_generator_weights(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    ckpt = tiny_checkpoint(tmp_path_factory)
    weights = generator_weights(ckpt)
    generator = UnetGenerator(num_downs=6, ngf=8)  # the tiny run's generator (helpers.TINY_UNET)
    generator.load_state_dict(weights)  # strict: every key, no other
    stored = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in generator.state_dict().items():
        torch.testing.assert_close(value, stored[f"generator.{key}"], msg=key)


class RecordingFCN:
    """Stands in for FCNScore: records what it is asked to segment against which labels."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def update(self, photos: torch.Tensor, label_maps: torch.Tensor) -> None:
        self.calls.append((photos.clone(), label_maps.clone()))

    def compute(self) -> dict[str, float]:
        return {"FCN/pixel_accuracy": 0.5}


def test_the_fcn_score_segments_the_generated_photos_against_their_input_labels(
    tmp_path: Path,
) -> None:
    (tmp_path / "test").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):  # photo and labels differ, so taking one for the other shows
        Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(
            tmp_path / "test" / f"{i}.png"
        )
    pairs = ReferencePairs(tmp_path / "test", 32, 32, train=False)
    generator = torch.nn.Tanh()  # deterministic: G(x) = tanh(x)
    fcn = RecordingFCN()
    scores = score(generator, pairs, fcn=fcn)
    assert scores["FCN/pixel_accuracy"] == 0.5 and {"L1", "PSNR", "SSIM"} <= scores.keys()
    assert len(fcn.calls) == len(pairs)
    for (photos, label_maps), (x, y) in zip(
        fcn.calls, (pairs[i] for i in range(len(pairs))), strict=True
    ):
        torch.testing.assert_close(photos, torch.tanh(x[None]), rtol=0, atol=0)
        torch.testing.assert_close(label_maps, x[None], rtol=0, atol=0)
        assert not torch.equal(x, y)


def test_the_table_names_runs_by_folder_and_averages_the_seeds() -> None:
    def row(path: str, ssim: float) -> dict:
        return {"generator": path, "test_resize": "pil", "L1": 0.3, "PSNR": 12.0, "SSIM": ssim}

    rows = [
        row("/somewhere/parity/framework_s1/0/checkpoints/last.ckpt", 0.2),
        row("/somewhere/parity/framework_s0/0/checkpoints/last.ckpt", 0.1),
        row("/elsewhere/plain_pil_s0/generator.pth", 0.25),
    ]
    assert markdown(rows).splitlines() == [
        "| side | seed | test resize | L1 | PSNR (dB) | SSIM |",
        "| --- | --- | --- | --- | --- | --- |",
        "| framework | 0 | pil | 0.300 | 12.00 | 0.100 |",
        "| framework | 1 | pil | 0.300 | 12.00 | 0.200 |",
        "| framework | mean | pil | **0.300** | **12.00** | **0.150** |",
        "| plain_pil | 0 | pil | 0.300 | 12.00 | 0.250 |",
    ]
