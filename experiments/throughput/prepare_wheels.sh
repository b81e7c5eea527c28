#!/usr/bin/env bash
# Download the wheels `make gpu-check` installs on the GPU machine (Python 3.12, x86-64, no
# registry access there) into wheels/ (git-ignored), from gpu-wheels.txt beside this script.
# Run from the repository root on a machine that reaches PyPI: experiments/throughput/prepare_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
DEST=${1:-wheels}
mkdir -p "$DEST"
# --no-deps: gpu-wheels.txt names every package the machine lacks; pip would otherwise also
# fetch what the machine has (numpy, scipy, opencv: hundreds of MB over the 64 MiB carry limit).
# pip matches a manylinux_2_N tag exactly, hence the list of them.
# antlr4-python3-runtime 4.9.3 (what omegaconf 2.3 needs) is published as source only: it is
# built here into a pure-Python wheel, which any Python 3 installs.
REQS=experiments/throughput/gpu-wheels.txt
grep -v '^#' "$REQS" | grep . | grep -v '^antlr4-python3-runtime' | xargs "$PYTHON" -m pip download \
  --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
  -d "$DEST"
grep '^antlr4-python3-runtime' "$REQS" | xargs "$PYTHON" -m pip wheel --no-deps -w "$DEST"
du -sh "$DEST"
