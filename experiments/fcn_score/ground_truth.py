"""The FCN-score of the real test photos: a segmenter's "ground truth" row, per class too.

``--constant`` scores, for scale, a "segmenter" that answers the split's most frequent class
everywhere (the floor any trained segmenter must clear).

Usage (from the repository root)::

    PYTHONPATH=src python experiments/fcn_score/ground_truth.py <segmenter .ckpt> [--split test]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from pix2pix_lit.metrics.fcn_score import FCNScore


class ConstantClass(nn.Module):
    """Logits that pick ``index`` at every pixel, whatever the photo."""

    def __init__(self, index: int, num_classes: int) -> None:
        super().__init__()
        self.index, self.num_classes = index, num_classes

    def forward(self, photos: Tensor) -> Tensor:
        logits = torch.zeros(len(photos), self.num_classes, *photos.shape[-2:])
        logits[:, self.index] = 1.0
        return logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--constant", action="store_true")
    args = parser.parse_args()
    score = FCNScore.from_checkpoint(args.ckpt)
    config = torch.load(args.ckpt, map_location="cpu", weights_only=False)["pix2pix_lit_config"]
    data = {**config["data"], "test_split": args.split, "num_workers": 0}
    datamodule = instantiate(data)
    datamodule.setup("test")
    batches = list(datamodule.test_dataloader())
    if args.constant:
        for batch in batches:  # count the classes of the label maps first
            score.update(batch["A"], batch["B"])
        majority = int(score.confusion.sum(1).argmax())
        score = FCNScore(ConstantClass(majority, score.palette.num_classes), score.palette)
    for batch in batches:
        score.update(batch["A"], batch["B"])  # the real photos against their label maps
    print(json.dumps({"ckpt": args.ckpt.name, "split": args.split, **score.compute()}, indent=1))


if __name__ == "__main__":
    main()
