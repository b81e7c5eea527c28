"""``python -m pix2pix_lit.gpu_check.install``: install what this machine lacks from wheels.

The GPU machine has torch, Lightning, torchmetrics, numpy, OpenCV… but not Hydra, OmegaConf,
albumentations or W&B, and reaches no package registry. Their wheels travel with the tree
(``wheels/``, from ``experiments/throughput/prepare_wheels.sh``) and are installed with
``--no-deps --target`` into a folder the later stages put on ``PYTHONPATH``: the machine's
own packages (its torch above all) stay as they are. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
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
#: Distributions whose versions the table reports.
REPORTED = ("hydra-core", "omegaconf", "albumentations", "wandb")


def _missing(env: dict[str, str] | None = None) -> list[str]:
    """Modules of NEEDED that a fresh interpreter with ``env`` cannot import."""
    check = "import importlib.util, sys; print(*[m for m in sys.argv[1:] if not importlib.util.find_spec(m)])"
    out = subprocess.run(
        [sys.executable, "-c", check, *NEEDED], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.split()


def _versions(env: dict[str, str] | None) -> str:
    check = "import importlib.metadata as m, sys; print(', '.join(f'{d} {m.version(d)}' for d in sys.argv[1:]))"
    out = subprocess.run(
        [sys.executable, "-c", check, *REPORTED], capture_output=True, text=True, env=env
    )
    return out.stdout.strip() or out.stderr.strip().splitlines()[-1]


def install(wheels: Path, site: Path, dry_run: bool) -> dict[str, str]:
    """Install the wheels when something is missing; a table row's status and notes."""
    missing = _missing()
    found = sorted(wheels.glob("*.whl"))
    if not missing:
        return {"status": "ok", "notes": f"nothing missing; {_versions(None)}"}
    if not found:
        return {
            "status": "failed",
            "notes": f"{', '.join(missing)} missing and no wheels in {wheels}: run "
            "experiments/throughput/prepare_wheels.sh and carry wheels/",
        }
    if dry_run:
        return {"status": "skipped", "notes": f"dry run: would install {len(found)} wheels"}
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
    pip += ["--no-compile", "--no-cache-dir", "--upgrade", "--target", str(site)]
    subprocess.run([*pip, *map(str, found)], check=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    still = _missing(env)
    if still:
        return {"status": "failed", "notes": f"{', '.join(still)} still missing after installing"}
    return {
        "status": "ok",
        "notes": f"installed {len(found)} wheels ({', '.join(missing)}); {_versions(env)}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pix2pix_lit.gpu_check.install")
    parser.add_argument("--wheels", type=Path, required=True)
    parser.add_argument("--site", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    row = install(args.wheels, args.site, args.dry_run)
    args.result.write_text(json.dumps({"rows": [{"what": "wheels", **row}]}, indent=2))
    sys.exit(0 if row["status"] != "failed" else 1)


if __name__ == "__main__":
    main()
