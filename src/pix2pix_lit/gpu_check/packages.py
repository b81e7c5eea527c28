"""``python -m pix2pix_lit.gpu_check.packages RESULT``: are the packages the GPU machine lacks
importable now, and in which versions.

The GPU machine has torch, Lightning, torchmetrics, numpy, OpenCV… but not Hydra, OmegaConf,
albumentations or W&B, and reaches no package registry. Their wheels travel with the tree
(``wheels/``, from ``experiments/throughput/prepare_wheels.sh``); ``gpu_check.sh`` installs
them with ``--no-deps --target`` into a folder on ``PYTHONPATH`` before any Python of the
package runs (importing the package imports Hydra): the machine's own packages, its torch above
all, stay as they are. This stage reports what came of it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

#: Modules the project imports that the GPU machine's image lacks, and their distributions.
NEEDED = {
    "hydra": "hydra-core",
    "omegaconf": "omegaconf",
    "antlr4": "antlr4-python3-runtime",
    "albumentations": "albumentations",
    "albucore": "albucore",
    "wandb": "wandb",
}


def check() -> dict[str, str]:
    """A table row's status and notes: the versions found, or what is missing."""
    missing = [module for module in NEEDED if importlib.util.find_spec(module) is None]
    if missing:
        return {
            "status": "failed",
            "notes": f"{', '.join(missing)} missing: carry wheels/ "
            "(experiments/throughput/prepare_wheels.sh) and start with gpu_check.sh",
        }
    found = [f"{d} {importlib.metadata.version(d)}" for d in NEEDED.values()]
    where = Path(importlib.util.find_spec("hydra").origin).parents[1]
    return {"status": "ok", "notes": f"{', '.join(found)} (from {where.name}/)"}


def main() -> None:
    row = check()
    Path(sys.argv[1]).write_text(json.dumps({"rows": [{"what": "imports", **row}]}, indent=2))
    sys.exit(0 if row["status"] == "ok" else 1)


if __name__ == "__main__":
    main()
