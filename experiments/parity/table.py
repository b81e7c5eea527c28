"""The parity table from ``one_evaluation.py``'s output: one row per side and seed, then each
side's mean, named by the run folder (``plain_pil_s0``, ``framework_s1``, …) and never by the
machine's paths.

Usage::

    PYTHONPATH=src python experiments/parity/one_evaluation.py ... > scores.jsonl
    python experiments/parity/table.py scores.jsonl [more.jsonl]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

COLUMNS = {
    "L1": "L1",
    "PSNR": "PSNR (dB)",
    "SSIM": "SSIM",
    "FCN/pixel_accuracy": "FCN per-pixel",
    "FCN/class_accuracy": "FCN per-class",
    "FCN/mean_IoU": "FCN IoU",
}
SEEDED = re.compile(r"^(?P<side>.+)_s(?P<seed>\d+)$")


def run_name(generator: str) -> str:
    """``…/plain_pil_s0/generator.pth`` → ``plain_pil_s0``; ``…/framework_s1/0/checkpoints/
    last.ckpt`` → ``framework_s1`` (the nearest folder that is neither a job number nor
    ``checkpoints``)."""
    for folder in reversed(Path(generator).parts[:-1]):
        if not folder.isdigit() and folder != "checkpoints":
            return folder
    raise ValueError(f"{generator}: no run folder in the path")


def cell(column: str, value: float) -> str:
    """PSNR in dB to two decimals, the [0, 1] and L1 scores to three."""
    return f"{value:.2f}" if column == "PSNR" else f"{value:.3f}"


def markdown(rows: list[dict]) -> str:
    columns = [c for c in COLUMNS if all(c in row for row in rows)]
    lines = [
        "| side | seed | test resize | " + " | ".join(COLUMNS[c] for c in columns) + " |",
        "| --- | --- | --- |" + " --- |" * len(columns),
    ]
    sides: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        match = SEEDED.match(run_name(row["generator"]))
        if match is None:
            raise ValueError(f"{row['generator']}: the run folder does not end in _s<seed>")
        sides.setdefault((match["side"], row["test_resize"]), []).append(
            {**row, "seed": match["seed"]}
        )
    for (side, resize), runs in sides.items():
        for run in sorted(runs, key=lambda r: int(r["seed"])):
            values = " | ".join(cell(c, run[c]) for c in columns)
            lines.append(f"| {side} | {run['seed']} | {resize} | {values} |")
        if len(runs) > 1:
            means = [sum(r[c] for r in runs) / len(runs) for c in columns]
            values = " | ".join(f"**{cell(c, m)}**" for c, m in zip(columns, means, strict=True))
            lines.append(f"| {side} | mean | {resize} | {values} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "scores", type=Path, nargs="+", help="one_evaluation.py output (JSON lines)"
    )
    args = parser.parse_args()
    rows = [json.loads(line) for path in args.scores for line in path.read_text().splitlines()]
    print(markdown(rows))


if __name__ == "__main__":
    main()
