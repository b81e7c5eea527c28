"""How far apart are the two stand-in digit domains? Classifier accuracies across them.

    python experiments/dtn/diagnostics.py <LOG_DIR>

reads the study's f (``LOG_DIR/f``), C_T (``LOG_DIR/c_t``) and cached digit sets
(``LOG_DIR/data``) and prints: f on the target test digits (how much of a target digit's
identity f's features keep, which L_TID relies on), and C_T on the grey source test digits as
they are, with the ink made brighter than the background (the target's polarity), and also
stretched to the full range (the "original images" baseline and what polarity and contrast
explain of it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from pix2pix_lit.data.digits import to_signed
from pix2pix_lit.tasks.dtn import load_classifier, match_channels


def load_split(path: Path) -> tuple[Tensor, Tensor]:
    with np.load(path) as stored:
        return to_signed(torch.from_numpy(stored["images"])), torch.from_numpy(stored["labels"])


def accuracy(net: nn.Module, images: Tensor, labels: Tensor) -> float:
    with torch.no_grad():
        return float((net(images).argmax(1) == labels).float().mean())


def main(log_dir: Path) -> None:
    f = load_classifier(str(log_dir / "f/checkpoints/last.ckpt"), "f").eval()
    c_t = load_classifier(str(log_dir / "c_t/checkpoints/last.ckpt"), "C_T").eval()
    target, target_labels = load_split(log_dir / "data/uci_digits/test.npz")
    source, source_labels = load_split(log_dir / "data/synthetic_digits/test.npz")
    grey = match_channels(source, 1)
    # the background is the most common level: ink darker than it is flipped to bright
    pixels = grey.flatten(1)
    dark_ink = (pixels.median(1).values > pixels.mean(1)).view(-1, 1, 1, 1)
    bright = torch.where(dark_ink, -grey, grey)
    low, high = bright.amin((1, 2, 3), keepdim=True), bright.amax((1, 2, 3), keepdim=True)
    stretched = 2 * (bright - low) / (high - low).clamp_min(1e-6) - 1
    rows = {
        "f on the target test digits (grey repeated to RGB)": (f, match_channels(target, 3)),
        "C_T on the grey source test digits": (c_t, grey),
        "C_T on them with the ink made bright": (c_t, bright),
        "C_T on them with the ink bright, stretched to [-1, 1]": (c_t, stretched),
    }
    for name, (net, images) in rows.items():
        labels = target_labels if "target" in name else source_labels
        print(f"{name}: {accuracy(net, images, labels):.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
