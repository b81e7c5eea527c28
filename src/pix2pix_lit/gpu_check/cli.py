"""``python -m pix2pix_lit.gpu_check [--dry-run] [--copy-to DIR] [--only STAGE...]``
(``make gpu-check``, ``make gpu-check DRY_RUN=1``).

On a GPU machine (after ``gpu_check.sh`` installed what it lacks from ``wheels/``): name the
device; check the installed packages; run
``pytest -m gpu``; count host-device syncs per training step; time the bench's GPU rows
(256×256, U-Net256 + PatchGAN70, batch 1, 16 and 128: fp32, bf16, channels_last, perf=fast,
the in-memory device-side data path, the whole-step CUDA graph, perf=graph, perf=compile,
perf=gpu); train facades for 2 epochs and extrapolate the recipe's 200. Each stage runs in its
own process with its own time limit, all within ``--budget`` seconds (8 minutes), and the table
(``<out>/gpu-check-<device>.md`` and ``.json``) is rewritten after every stage.

``--dry-run``: the same stages on a CPU at tiny sizes (what CI runs).
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path

from pix2pix_lit.gpu_check.plan import Settings, build_plan
from pix2pix_lit.gpu_check.report import Report
from pix2pix_lit.gpu_check.runner import run_plan


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pix2pix_lit.gpu_check", description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="CPU stand-ins at tiny sizes")
    parser.add_argument("--out", type=Path, default=None, help="where the table goes "
                        "(default: experiments/throughput, for a dry run logs/gpu-check)")  # fmt: skip
    parser.add_argument("--copy-to", type=Path, default=None, help="also copy table and log here")
    parser.add_argument("--work", type=Path, default=Path("/tmp/pix2pix-gpu-check"),
                        help="scratch folder (emptied first)")  # fmt: skip
    parser.add_argument("--data-root", type=Path, default=Path("data/facades"),
                        help="facades (pix2pix layout); generated pairs when absent")  # fmt: skip
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for all stages (default: 480; a dry run 1800)")  # fmt: skip
    parser.add_argument("--only", nargs="+", default=(), metavar="STAGE",
                        help="run only stages whose name matches one of these patterns")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run every stage within the budget; the table says what passed, failed or ran out."""
    args = _parse_args(argv)
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # a dry run always trains on generated pairs: tiny, and there whether or not facades is
    use_facades = not args.dry_run and (args.data_root / "train").is_dir()
    settings = Settings(
        work=work,
        data_root=args.data_root.resolve() if use_facades else None,
        dry_run=args.dry_run,
    )
    default_out = Path("logs/gpu-check") if args.dry_run else Path("experiments/throughput")
    report = Report(
        out=args.out or default_out,
        log_dir=work,
        dry_run=args.dry_run,
        budget_s=args.budget or (1800.0 if args.dry_run else 480.0),
        copy_to=args.copy_to,
    )
    run_plan(build_plan(settings), settings, report, args.only)
    for path in report.write(finished=True):
        print(f"gpu-check: wrote {path}")
    print(report.markdown(finished=True), end="")
