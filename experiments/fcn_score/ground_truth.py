"""The FCN-score of the real test photos: a segmenter's "ground truth" row, per class too.

Usage (from the repository root)::

    PYTHONPATH=src python experiments/fcn_score/ground_truth.py <segmenter .ckpt> [--split test]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from hydra.utils import instantiate

from pix2pix_lit.metrics.fcn_score import FCNScore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt", type=Path)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    score = FCNScore.from_checkpoint(args.ckpt)
    config = torch.load(args.ckpt, map_location="cpu", weights_only=False)["pix2pix_lit_config"]
    data = {**config["data"], "test_split": args.split, "num_workers": 0}
    datamodule = instantiate(data)
    datamodule.setup("test")
    for batch in datamodule.test_dataloader():
        score.update(batch["A"], batch["B"])  # the real photos against their label maps
    print(json.dumps({"ckpt": args.ckpt.name, "split": args.split, **score.compute()}, indent=1))


if __name__ == "__main__":
    main()
