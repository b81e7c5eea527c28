"""Training throughput: the Lightning run of ``pix2pix_lit.train`` against a plain PyTorch loop.

One concept per module: :mod:`~pix2pix_lit.bench.timing` (step times, peak memory),
:mod:`~pix2pix_lit.bench.rows` (the speed switches and the train config),
:mod:`~pix2pix_lit.bench.plain` (the plain loop), :mod:`~pix2pix_lit.bench.runner` (the runs
and their summaries), :mod:`~pix2pix_lit.bench.table` (the markdown table) and
:mod:`~pix2pix_lit.bench.cli` (``python -m pix2pix_lit.bench``, whose help tells the method).
"""

from pix2pix_lit.bench.cli import main
from pix2pix_lit.bench.plain import autocast_for, plain_run
from pix2pix_lit.bench.rows import CPU_ROWS, ROWS, compose_train_config
from pix2pix_lit.bench.runner import lightning_run, run_bench
from pix2pix_lit.bench.table import markdown_table
from pix2pix_lit.bench.timing import PeakMemory, StepTimer, StepTimes
from pix2pix_lit.hardware import hardware

__all__ = [
    "CPU_ROWS",
    "ROWS",
    "PeakMemory",
    "StepTimer",
    "StepTimes",
    "autocast_for",
    "compose_train_config",
    "hardware",
    "lightning_run",
    "main",
    "markdown_table",
    "plain_run",
    "run_bench",
]
