"""Export a trained generator alone, as ONNX, TorchScript or the reference code's weights file,
and check the export's outputs.

The exported model maps (N, C_in, H, W) float images in [-1, 1] to (N, C_out, H, W) in
[-1, 1]; the batch axis is dynamic. Both formats are traced from one example input, so they
record the generator in the test-time mode it was put in:

* ``standard`` (default): ``eval()`` — no dropout, batch norm with the running statistics; a
  deterministic function, exported to either format.
* ``paper``: dropout on and batch norm with the statistics of each batch, as pix2pix tests.
  TorchScript keeps both as ops (dropout draws from torch's generator at every call). ONNX
  export supports ``standard`` only: exported in ``paper`` mode, the graph's Dropout runs in
  inference mode under ONNX Runtime and its outputs match neither protocol.

TorchScript traces accept any batch size and any image size the generator accepts. The ONNX
graph (from ``torch.onnx.export``'s torch.export-based exporter) has a dynamic batch axis but
fixed height and width: the training crop size unless another ``size`` is given.

``reference`` writes the weights alone in the layout of the reference pix2pix/CycleGAN code
(:mod:`pix2pix_lit.inference.reference`), the ``latest_net_G.pth`` its test.py loads; the
test-time protocol is chosen when the file is run, not baked in.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.inference.checkpoint import load_translator
from pix2pix_lit.inference.protocol import (
    check_inference_mode,
    inference_protocol,
    repeatable_noise,
)
from pix2pix_lit.inference.reference import from_reference, to_reference
from pix2pix_lit.networks import size_rule

log = logging.getLogger(__name__)

#: format -> default file name in the run folder
FORMATS: dict[str, str] = {
    "onnx": "generator.onnx",
    "torchscript": "generator.pt",
    # the name the reference's test.py loads (--epoch latest, --model test)
    "reference": "latest_net_G.pth",
}
USAGE = (
    "python -m pix2pix_lit.export ckpt_path=<file.ckpt> format=onnx|torchscript|reference "
    "[output=<file>]"
)
EXPORT_EXTRA = "pip install 'pix2pix-lit[export]'"
# A batch of 2: torch.export specialises a batch of 1 to the constant 1.
_EXAMPLE_BATCH = 2
# Exported and PyTorch outputs (in [-1, 1]) agree to float32 rounding, far below this.
PARITY_TOLERANCE = 1e-4


def check_format(fmt: str, inference: str) -> None:
    """Raise ConfigError for an unknown format or a protocol the format cannot hold."""
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not one of {', '.join(FORMATS)}")
    check_inference_mode(inference)
    if fmt == "onnx" and inference != "standard":
        raise ConfigError(
            f"format=onnx with inference={inference}: an ONNX graph runs dropout in inference "
            "mode, so it cannot reproduce the paper protocol; use inference=standard, or "
            "format=torchscript for the paper protocol"
        )
    if fmt == "onnx":
        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                f"format=onnx needs the optional package(s) {', '.join(missing)}; {EXPORT_EXTRA}"
            )


def example_input(generator: nn.Module, size: int, channels: int) -> Tensor:
    """A fixed random (2, channels, size, size) batch in [-1, 1], without touching torch's RNG."""
    multiple = size_rule(generator).multiple
    if size % multiple:
        raise ConfigError(f"size={size} is not a multiple of {multiple}, which the generator needs")
    noise = torch.Generator().manual_seed(0)
    return torch.rand(_EXAMPLE_BATCH, channels, size, size, generator=noise) * 2 - 1


def export_generator(
    generator: nn.Module,
    fmt: str,
    output: str | Path,
    example: Tensor,
    *,
    inference: str = "standard",
    opset: int = 17,
) -> Path:
    """Write ``generator`` in test-time mode ``inference`` as ``fmt`` to ``output``.

    ``example`` is the input traced with (its height and width are the ONNX graph's).
    ``generator`` itself is left untouched (a CPU copy is exported).
    """
    check_format(fmt, inference)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "reference":
        torch.save(to_reference(generator), output)
        return output
    net = copy.deepcopy(generator).cpu()
    with inference_protocol(net, inference), warnings.catch_warnings():
        # TracerWarning: the generators' input-size checks are Python conditions, evaluated
        # once on the example; DeprecationWarning: torch.jit is deprecated upstream, but its
        # files are what libtorch (C++) and older deployments load.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        if fmt == "torchscript":
            torch.jit.trace(net, example, check_trace=False).save(str(output))
        else:
            torch.onnx.export(
                net,
                (example,),
                str(output),
                input_names=["input"],
                output_names=["output"],
                opset_version=opset,
                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                dynamo=True,
                # one self-contained file; generators are far below ONNX's 2 GB limit
                external_data=False,
                verbose=False,
            )
    return output


def run_exported(path: str | Path, fmt: str, images: Tensor) -> Tensor | None:
    """Outputs of an exported file on ``images`` (CPU); None when the runtime is missing."""
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # see export_generator
            return torch.jit.load(str(path), map_location="cpu")(images)
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": images.numpy()})
    return torch.from_numpy(np.asarray(output))


def run_reference_file(
    path: str | Path, generator: nn.Module, images: Tensor, inference: str
) -> Tensor:
    """Outputs on ``images`` of a reference-layout file loaded into a copy of ``generator``
    whose weights were first set to NaN, so that anything the file does not fill shows."""
    net = copy.deepcopy(generator).cpu()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.fill_(float("nan"))
    from_reference(torch.load(path, map_location="cpu", weights_only=True), net, str(path))
    with inference_protocol(net, inference):
        return net(images)


def export_difference(
    generator: nn.Module, path: str | Path, fmt: str, example: Tensor, inference: str
) -> float | None:
    """Largest absolute difference between the export's and PyTorch's outputs on ``example``.

    Both runs draw their noise from the same seed, so the paper protocol compares too.
    None when the format's runtime (onnxruntime) is not installed.
    """
    net = copy.deepcopy(generator).cpu()
    with repeatable_noise(0, example.device):
        if fmt == "reference":
            exported = run_reference_file(path, net, example, inference)
        else:
            exported = run_exported(path, fmt, example)
    if exported is None:
        return None
    with repeatable_noise(0, example.device), inference_protocol(net, inference):
        expected = net(example)
    return float((exported - expected).abs().max())


def run_export(cfg: DictConfig, default_dir: str | Path) -> Path:
    """Export ``cfg.ckpt_path``'s generator as the ``export`` config says; return the file.

    Without ``cfg.output`` the file is ``default_dir/`` + its :data:`FORMATS` name.
    """
    check_format(cfg.format, cfg.inference)
    output = Path(cfg.output or Path(default_dir) / FORMATS[cfg.format])
    if output.exists() and not cfg.overwrite:
        raise ConfigError(
            f"output={output} already exists; pass overwrite=true to replace it, "
            "or choose another output"
        )
    # The ONNX toolchain logs each optimisation pass at INFO; keep the command's output short.
    for name in ("onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.ERROR)
    task = load_translator(cfg, USAGE)
    data = (task.run_config or {}).get("data", {})
    model = (task.run_config or {}).get("model", {})
    size = cfg.size or data.get("crop_size")
    if not size:
        raise ConfigError("the checkpoint has no data.crop_size; pass size=<side> to export at")
    generator = task.translation_network()
    example = example_input(generator, size, model.get("in_channels", 3))
    export_generator(
        generator, cfg.format, output, example, inference=cfg.inference, opset=cfg.opset
    )
    log.info(
        "Exported %s (%s, inference=%s, input (N, %d, %d, %d) in [-1, 1]) to %s",
        type(generator).__name__,
        cfg.format,
        cfg.inference,
        example.shape[1],
        size,
        size,
        output,
    )
    if cfg.check:
        difference = export_difference(generator, output, cfg.format, example, cfg.inference)
        if difference is None:
            log.info("Not checked: onnxruntime is not installed (%s)", EXPORT_EXTRA)
        else:
            report = log.info if difference <= PARITY_TOLERANCE else log.warning
            report("Largest difference to PyTorch on the example batch: %.3g", difference)
    return output
