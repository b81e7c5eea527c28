"""Prediction on folders of any-size images, and ONNX / TorchScript export parity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import cli, run_main, tiny_checkpoint
from pix2pix_lit import export as export_cli
from pix2pix_lit import predict as predict_cli
from pix2pix_lit.data.transforms import resize
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.inference.checkpoint import LoneGenerator, load_task
from pix2pix_lit.inference.export import (
    PARITY_TOLERANCE,
    example_input,
    export_difference,
    export_generator,
    run_exported,
)
from pix2pix_lit.inference.prediction import fit_size, predict_folder, to_signed_tensor
from pix2pix_lit.inference.protocol import repeatable_noise
from pix2pix_lit.networks import (
    ResnetGenerator,
    SizeRule,
    UGATITGenerator,
    UnetGenerator,
    size_rule,
)
from pix2pix_lit.utils.images import to_uint8


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


def write_image(path: Path, height: int, width: int, seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


# -- sizes -------------------------------------------------------------------------------


def test_size_rules_come_from_the_generator() -> None:
    assert size_rule(UnetGenerator(num_downs=6, ngf=4)) == SizeRule(64)
    assert size_rule(ResnetGenerator(ngf=4, n_blocks=1)) == SizeRule(4)
    assert size_rule(UGATITGenerator(ngf=4, n_blocks=1, img_size=32, light=True)) == SizeRule(4)
    assert size_rule(UGATITGenerator(ngf=4, n_blocks=1, img_size=32)) == SizeRule(4, fixed=32)
    assert size_rule(torch.nn.Identity()) == SizeRule(1)


@pytest.mark.parametrize(("height", "width"), [(37, 50), (64, 64), (1, 130), (65, 3)])
def test_padding_round_trips_every_size(height: int, width: int) -> None:
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    fit = fit_size((height, width), SizeRule(64), resize_to=None)
    padded = fit.apply(image)
    assert padded.shape[0] % 64 == 0 and padded.shape[1] % 64 == 0
    assert np.array_equal(fit.undo(padded), image)  # the original sits inside, uncut


def test_resizing_goes_to_the_square_side_and_back() -> None:
    image = np.zeros((37, 50, 3), dtype=np.uint8)
    fit = fit_size((37, 50), SizeRule(64), resize_to=128)
    assert fit.apply(image).shape == (128, 128, 3)
    assert fit.undo(np.zeros((128, 128, 3), dtype=np.uint8)).shape == (37, 50, 3)
    with pytest.raises(
        ConfigError, match="resize_size=100 is not a multiple of 64, .*; use e.g. 128"
    ):
        fit_size((37, 50), SizeRule(64), resize_to=100)


# -- predict -----------------------------------------------------------------------------


def test_predict_matches_the_generator_on_images_that_need_no_padding(
    ckpt: Path, tmp_path: Path
) -> None:
    task = load_task(ckpt)
    inputs = tmp_path / "in"
    inputs.mkdir()
    paths = [write_image(inputs / f"{i}.png", 64, 64, seed=i) for i in range(3)]
    summary = predict_folder(task, inputs, tmp_path / "out", batch_size=3, seed=5)
    assert [p.name for p in summary.written] == ["0.png", "1.png", "2.png"]
    batch = to_signed_tensor([np.asarray(Image.open(p)) for p in paths])
    with repeatable_noise(5, task.device):
        expected = to_uint8(task.generate(batch)).permute(0, 2, 3, 1).numpy()
    written = np.stack([np.asarray(Image.open(p)) for p in summary.written])
    assert np.array_equal(written, expected)


def test_predict_cli_keeps_sizes_and_skips_unreadable_images(ckpt: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_image(inputs / "odd.png", 37, 50)
    write_image(inputs / "square.jpg", 64, 64)
    write_image(inputs / "wide.png", 20, 130)
    (inputs / "broken.png").write_bytes(b"not an image")
    (inputs / "notes.txt").write_text("not an image either, and not listed")
    out = tmp_path / "out"
    result = cli(
        f"ckpt_path={ckpt}",
        f"input_dir={inputs}",
        f"output_dir={out}",
        "batch_size=2",
        cwd=tmp_path,
        module="pix2pix_lit.predict",
    )
    assert result.returncode == 0, result.stderr
    sizes = {p.name: Image.open(p).size for p in out.iterdir()}
    assert sizes == {"odd.png": (50, 37), "square.png": (64, 64), "wide.png": (130, 20)}
    warnings = [line for line in result.stdout.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "broken.png" in warnings[0]
    assert "translated 3 image(s)" in result.stdout
    assert "skipped 1 unreadable: broken.png" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_inputs_sharing_a_name_keep_their_extension(ckpt: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_image(inputs / "a.png", 64, 64)
    write_image(inputs / "a.jpg", 64, 64)
    write_image(inputs / "b.png", 64, 64)
    summary = predict_folder(load_task(ckpt), inputs, tmp_path / "out", resize_to=64)
    assert sorted(p.name for p in summary.written) == ["a.jpg.png", "a.png.png", "b.png"]


def test_predict_bad_inputs_name_the_key_and_path(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # Hydra's run folders go under ./logs
    empty, full, out = tmp_path / "empty", tmp_path / "full", tmp_path / "out"
    empty.mkdir()
    full.mkdir()
    write_image(full / "x.png", 8, 8)
    (out).mkdir()
    write_image(out / "x.png", 8, 8)
    base = (f"ckpt_path={ckpt}",)
    cases = {
        (f"input_dir={empty}", f"output_dir={out}"): f"input_dir={empty} contains no images",
        (
            f"input_dir={tmp_path / 'nope'}",
            f"output_dir={out}",
        ): f"input_dir={tmp_path / 'nope'} is not a folder",
        (
            f"input_dir={full}",
            f"output_dir={out}",
        ): f"output_dir={out} already holds 1 of the outputs (x.png)",
        (f"input_dir={full}", f"output_dir={full}"): f"output_dir={full} is input_dir",
        (f"input_dir={full}", f"output_dir={out}", "batch_size=0"): "batch_size=0 must be",
    }
    for args, expected in cases.items():
        message = run_main(predict_cli.main, *base, *args)
        assert message is not None and message.startswith("error: "), args
        assert expected in message, (args, message)
    assert (
        run_main(
            predict_cli.main, *base, f"input_dir={full}", f"output_dir={out}", "overwrite=true"
        )
        is None
    )
    assert not np.array_equal(
        np.asarray(Image.open(out / "x.png")), np.asarray(Image.open(full / "x.png"))
    )


# -- export ------------------------------------------------------------------------------


@pytest.mark.parametrize("inference", ["standard", "paper"])
def test_torchscript_export_matches_pytorch(ckpt: Path, tmp_path: Path, inference: str) -> None:
    generator = load_task(ckpt).translation_network()
    example = example_input(generator, 64, 3)
    path = export_generator(
        generator, "torchscript", tmp_path / "g.pt", example, inference=inference
    )
    difference = export_difference(generator, path, "torchscript", example, inference)
    assert difference is not None and difference <= PARITY_TOLERANCE
    # any batch size and any accepted image size
    bigger = torch.rand(3, 3, 128, 64) * 2 - 1
    assert export_difference(generator, path, "torchscript", bigger, inference) <= PARITY_TOLERANCE


def test_onnx_export_matches_pytorch_with_a_dynamic_batch(ckpt: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    generator = load_task(ckpt).translation_network()
    example = example_input(generator, 64, 3)
    path = export_generator(generator, "onnx", tmp_path / "g.onnx", example)
    assert export_difference(generator, path, "onnx", example, "standard") <= PARITY_TOLERANCE
    three = torch.rand(3, 3, 64, 64) * 2 - 1
    outputs = run_exported(path, "onnx", three)
    assert outputs is not None and outputs.shape == (3, 3, 64, 64)
    assert export_difference(generator, path, "onnx", three, "standard") <= PARITY_TOLERANCE


def test_export_cli_writes_the_file_and_refuses_bad_requests(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "gen.pt"
    args = (f"ckpt_path={ckpt}", "format=torchscript", f"output={output}")
    assert run_main(export_cli.main, *args) is None
    assert run_exported(output, "torchscript", torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    cases = {
        args: f"output={output} already exists; pass overwrite=true",
        (f"ckpt_path={ckpt}", "format=onnx", "inference=paper"): "format=onnx with inference=paper",
        (f"ckpt_path={ckpt}", "format=tflite"): "format='tflite' is not one of onnx, torchscript",
        (f"ckpt_path={ckpt}", "size=100"): "size=100 is not a multiple of 64",
        ("format=onnx",): "ckpt_path is not set",
    }
    for case, expected in cases.items():
        message = run_main(export_cli.main, *case)
        assert message is not None and message.startswith("error: "), case
        assert expected in message, (case, message)


# -- predict: images that cannot be translated, reruns -----------------------------------


@pytest.mark.parametrize(
    "network",
    [
        lambda: ResnetGenerator(ngf=4, n_blocks=1),
        lambda: UGATITGenerator(ngf=4, n_blocks=1, img_size=16, light=True),
    ],
    ids=["resnet", "ugatit_light"],
)
def test_images_the_generator_cannot_translate_are_skipped_and_counted(
    tmp_path: Path, network: Callable[[], torch.nn.Module]
) -> None:
    """1x1 and 2x2 images reach the generator's bottleneck as one pixel, where reflection
    padding and instance norm fail: skipped like unreadable ones, the rest go on."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, (height, width) in {"a1": (1, 1), "b2": (2, 2), "c": (16, 16), "d": (9, 13)}.items():
        write_image(inputs / f"{name}.png", height, width)
    generator = LoneGenerator(network(), {}, "paper")
    summary = predict_folder(generator, inputs, tmp_path / "out", batch_size=1)
    assert [p.name for p in summary.written] == ["c.png", "d.png"]
    assert [p.name for p, _ in summary.untranslatable] == ["a1.png", "b2.png"]
    assert summary.untranslatable[0][1].startswith("1x1: ")
    assert str(summary).endswith("; skipped 2 untranslatable: a1.png, b2.png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c.png", "d.png"]


def test_a_rerun_continues_where_the_last_one_stopped(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted in its second batch, a rerun with the same settings keeps the first batch's
    outputs and writes the others as an uninterrupted run does (paper protocol: dropout)."""
    task = load_task(ckpt)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(5):
        write_image(inputs / f"{i}.png", 64, 64, seed=i)
    whole = predict_folder(task, inputs, tmp_path / "whole", batch_size=2)
    assert len(whole.written) == 5

    calls = []

    def interrupted(images: torch.Tensor) -> torch.Tensor:
        calls.append(len(images))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return type(task).generate(task, images)

    monkeypatch.setattr(task, "generate", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        predict_folder(task, inputs, out, batch_size=2)
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png"]  # no partial file
    monkeypatch.undo()
    rerun = predict_folder(task, inputs, out, batch_size=2)
    assert [p.name for p in rerun.kept] == ["0.png", "1.png"]
    assert [p.name for p in rerun.written] == ["2.png", "3.png", "4.png"]
    assert "(2 more already there from an earlier run)" in str(rerun)
    for name in (f"{i}.png" for i in range(5)):
        assert np.array_equal(
            np.asarray(Image.open(out / name)), np.asarray(Image.open(tmp_path / "whole" / name))
        ), name
    with pytest.raises(ConfigError, match=f"output_dir={out} already holds 5 of the outputs"):
        predict_folder(task, inputs, out, batch_size=2, seed=1)


def test_resizing_is_the_data_pipelines_resize() -> None:
    """Pillow's bicubic, antialiased when shrinking, as training saw its images."""
    image = np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    fit = fit_size((300, 200), SizeRule(64), resize_to=128)
    assert np.array_equal(fit.apply(image), resize(image, (128, 128)))


def test_a_grayscale_input_generator_reads_images_as_grayscale(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_image(inputs / "colour.png", 32, 32)
    unet = UnetGenerator(1, 3, num_downs=5, ngf=4)
    generator = LoneGenerator(unet, {"in_channels": 1}, "standard")
    summary = predict_folder(generator, inputs, tmp_path / "out")
    assert [p.name for p in summary.written] == ["colour.png"], str(summary)
    gray = np.array(Image.open(inputs / "colour.png").convert("L"))[None, None]
    with torch.no_grad():
        expected = to_uint8(unet.eval()(torch.from_numpy(gray).float() / 127.5 - 1))
    assert np.array_equal(
        np.asarray(Image.open(summary.written[0])), expected[0].permute(1, 2, 0).numpy()
    )
