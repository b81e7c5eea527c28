"""The one evaluation of the parity study, applied alike to both sides' generators.

A generator from the plain reference loop (``generator.pth``) or from a framework run (a
Lightning ``.ckpt``; its ``generator.*`` weights) runs over the 106 facades test pairs
(labels → photo), resized to 128x128 by ``--resize`` (PIL bicubic, the reference's and, since
the data change, the framework's test pipeline, by default; ``cv2_cubic`` is the framework's
pipeline before that change), batch 1, in
the paper's test-time mode (dropout on, batch statistics: ``inference_protocol("paper")``) with
torch seeded once before the first image. Scores: the project's per-image L1 ([-1, 1] units),
PSNR and SSIM ([0, 1] images), averaged over the images, and with ``--segmenter`` (a
``task=segmenter`` checkpoint) the FCN-score of the generated photos against their input
label maps (per-pixel and per-class accuracy, class IoU over the summed confusion).

Usage (from the repository root)::

    PYTHONPATH=src python experiments/parity/one_evaluation.py <generator.pth|.ckpt> ... \
        [--segmenter <segmenter .ckpt>]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_loop import RESIZES, ReferencePairs, build_networks

from pix2pix_lit.inference import inference_protocol
from pix2pix_lit.metrics import image_scores
from pix2pix_lit.metrics.fcn_score import FCNScore

SCORES = ("L1", "PSNR", "SSIM")


def generator_weights(path: Path) -> dict[str, torch.Tensor]:
    """The U-Net's state dict from a plain-loop ``.pth`` or a framework ``.ckpt``."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if "state_dict" not in state:
        return state
    prefix = "generator."
    return {k[len(prefix) :]: v for k, v in state["state_dict"].items() if k.startswith(prefix)}


def score(
    generator: nn.Module, pairs: ReferencePairs, seed: int = 0, fcn: FCNScore | None = None
) -> dict[str, float]:
    """Mean L1 / PSNR / SSIM of ``generator`` over ``pairs`` under the paper's protocol, plus
    the FCN-score of its outputs against the input label maps when ``fcn`` is given."""
    torch.manual_seed(seed)
    sums = dict.fromkeys(SCORES, 0.0)
    with inference_protocol(generator, "paper"):
        for index in range(len(pairs)):
            x, y = pairs[index]
            fake = generator(x[None])
            scores = image_scores(fake, y[None]).scores
            for name in SCORES:
                sums[name] += float(scores[name].sum())
            if fcn is not None:
                fcn.update(fake, x[None])
    means = {name: total / len(pairs) for name, total in sums.items()}
    if fcn is not None:
        means.update(fcn.compute())
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generators", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/facades"))
    parser.add_argument("--resize", choices=sorted(RESIZES), default="pil")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--segmenter", type=Path, default=None, help="task=segmenter .ckpt")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs = ReferencePairs(args.data / "test", args.size, args.size, args.resize, train=False)
    for path in args.generators:
        generator, _ = build_networks(num_downs=args.size.bit_length() - 1)
        generator.load_state_dict(generator_weights(path))
        fcn = FCNScore.from_checkpoint(args.segmenter) if args.segmenter else None
        scores = score(generator, pairs, args.seed, fcn)
        row = {"generator": str(path), "test_resize": args.resize, **scores}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
