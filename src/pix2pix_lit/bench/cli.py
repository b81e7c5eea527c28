"""Training throughput: the Lightning run of ``pix2pix_lit.train`` against a plain PyTorch loop.

``python -m pix2pix_lit.bench [--batch 1 4] [--size 128] [--rows fp32 bf16 ...] [OVERRIDES]``

For each row (a speed switch, as Hydra overrides of the train config) and batch size it times

(a) ``pix2pix_lit.training.run.train`` on the composed config: the code path of
    ``python -m pix2pix_lit.train``, with a :class:`StepTimer` callback added;
(b) a plain PyTorch loop over the same data module, networks, objective and optimizers (built
    from the same config and seed), doing the same step (D step, then G step with D frozen)
    under the same switches (autocast, channels_last, fused Adam, compile).

Only steady-state steps count: the first ``--warmup`` steps (compilation, allocator warm-up)
and the first step of every epoch (loader start) are left out, and validation is off. On a
CPU a step's time is the median interval between the ends of consecutive steps (robust to
other processes on a shared machine); on a GPU, where steps are asynchronous, the mean over
the window between two synchronisations. Peak memory: ``torch.cuda.max_memory_allocated``
on a GPU; on a CPU the growth of the process's peak resident set (``VmHWM``, reset through
``/proc/self/clear_refs`` before each run) over its resident set at the start of the run.

Writes one table as ``<out>/<hardware>.md`` and ``<out>/<hardware>.json``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from pix2pix_lit.bench.rows import CPU_ROWS, ROWS
from pix2pix_lit.bench.runner import SIDES, run_bench
from pix2pix_lit.bench.table import markdown_table


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    gpu = torch.cuda.is_available()
    parser = argparse.ArgumentParser(prog="python -m pix2pix_lit.bench", description=__doc__)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 128] if gpu else [1, 4])
    parser.add_argument("--size", type=int, default=256 if gpu else 128, help="crop size")
    parser.add_argument("--rows", nargs="+", default=list(ROWS) if gpu else CPU_ROWS)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20 if gpu else 8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="a pix2pix-layout dataset (facades); default: generated pairs",
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/throughput"))
    parser.add_argument("--name", default=None, help="results file name (default: hardware)")
    parser.add_argument(
        "--sides",
        nargs="+",
        choices=SIDES,
        default=list(SIDES),
        help="time the Lightning run (the train code path), the plain loop, or both",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the train config")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the bench from the command line and print its table."""
    args = _parse_args(argv)
    # One table on stdout: Lightning's per-run banners would bury it.
    for name in ("lightning.pytorch", "lightning.fabric", "pix2pix_lit"):
        logging.getLogger(name).setLevel(logging.WARNING)
    results = run_bench(
        args.rows,
        args.batch,
        args.size,
        args.warmup,
        args.steps,
        args.repeats,
        args.data_root,
        args.overrides,
        args.out,
        args.name,
        args.sides,
    )
    print(markdown_table(results), end="")
