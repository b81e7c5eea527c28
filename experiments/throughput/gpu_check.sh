#!/usr/bin/env bash
# `make gpu-check`: on a lent GPU machine, install what it lacks from the carried wheels/ (only
# when Hydra & co. do not import), then `python -m pix2pix_lit.gpu_check "$@"` (see
# experiments/throughput/README.md). The install comes first because importing the package
# imports Hydra. PYTHON: the interpreter with the machine's torch (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
SITE=${GPU_SITE:-/tmp/pix2pix-gpu-site}
export PYTHONPATH="$SITE:src${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PYTHON" -c "import hydra, omegaconf, albumentations, wandb" 2>/dev/null; then
  # --no-deps --target: nothing of the machine's own (its torch) is replaced
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" wheels/*.whl
fi
exec "$PYTHON" -m pix2pix_lit.gpu_check "$@"
