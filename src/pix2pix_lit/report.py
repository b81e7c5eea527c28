"""Collect the finished jobs of a sweep into a markdown table and a figure.

``python -m pix2pix_lit.report <multirun dir> [more dirs] [--out DIR] [--readme README.md]``

Each job folder (``<multirun dir>/<job number>``, or a single run's folder) gives its
overrides (``.hydra/overrides.yaml``), its metrics (``csv/metrics.csv``: the final epoch's
training losses, the last and best validation scores, test scores when ``test=true``), the
scores of the evaluations written inside it (``**/metrics.json`` from
``python -m pix2pix_lit.evaluate ... output_dir=<job>/evaluate``: the latest checkpoint's in
the job's row, all of them as a learning curve), its best checkpoint and its last sample grid
(``images/epoch_*.png``). The table has one row per job, labelled by the overrides that differ
between the jobs (the shared ones are listed above it), then one row per group of jobs that
differ only in their seed (mean ± standard deviation); the figure shows each job's last
samples side by side above the loss curves of all jobs. ``--readme`` writes both into a
study's README between ``<!-- report:begin -->`` and ``<!-- report:end -->``.
``--keep-records DIR`` copies each job's record (the files the report reads: no checkpoints,
no galleries; :mod:`pix2pix_lit.reporting.records`) into ``DIR/<job>``, from which the same
report can be made once the run folders are gone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pix2pix_lit.errors import UserError
from pix2pix_lit.reporting.figure import draw_figure
from pix2pix_lit.reporting.jobs import load_jobs
from pix2pix_lit.reporting.records import keep_records
from pix2pix_lit.reporting.table import FIGURE_FILE, TABLE_FILE, markdown_table, update_readme


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_lit.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="multirun (or run) folders")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"where {TABLE_FILE} and {FIGURE_FILE} go (default: the first folder)",
    )
    parser.add_argument("--readme", type=Path, help="a README to put the table and figure into")
    parser.add_argument(
        "--keep-records",
        type=Path,
        metavar="DIR",
        help="copy each job's record (the small files this report reads) into DIR/<job>",
    )
    args = parser.parse_args(argv)
    try:
        jobs = load_jobs(args.dirs)
        out = args.out or args.dirs[0]
        table = markdown_table(jobs)
        out.mkdir(parents=True, exist_ok=True)
        (out / TABLE_FILE).write_text(table)
        figure = draw_figure(jobs, out / FIGURE_FILE)
        if args.readme:
            update_readme(args.readme, table, figure)
        kept = keep_records(jobs, args.keep_records) if args.keep_records else []
    except UserError as err:
        sys.exit(f"error: {err}")
    print(table)
    print(
        f"wrote {out / TABLE_FILE} and {figure}"
        + (f"; updated {args.readme}" if args.readme else "")
        + (f"; kept the records of {len(kept)} jobs in {args.keep_records}" if kept else "")
    )


if __name__ == "__main__":
    main()
