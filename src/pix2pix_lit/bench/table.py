"""The bench's results as a markdown table.

Formatting only, apart from the runs: ``markdown_table`` takes the ``results`` of a run or of a
saved ``<hardware>.json`` alike.
"""

from __future__ import annotations

from typing import Any


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The results as one markdown table; speed-ups relative to the fp32 row at the same batch.
    A side that was not run (``None``) shows n/a."""
    fp32 = {r["batch"]: r["lightning"] or {} for r in results if r["row"] == "fp32"}
    lines = [
        "| row | batch | Lightning img/s | Lightning ms/step | plain ms/step "
        "| Lightning ÷ plain | vs fp32 | Lightning best ms/step | plain best ms/step "
        "| Lightning ÷ plain (best) | vs fp32 (best) | loader wait ms "
        "| peak MiB Lightning | peak MiB plain |",
        "|" + "---|" * 14,
    ]
    for r in results:
        a, b, base = r["lightning"] or {}, r["plain"] or {}, fp32.get(r["batch"], {})
        cells = [
            r["row"],
            str(r["batch"]),
            _fmt(a.get("images_per_s"), 2),
            _fmt(a.get("ms_per_step"), 0),
            _fmt(b.get("ms_per_step"), 0),
            _fmt(_ratio(a.get("ms_per_step"), b.get("ms_per_step")), 2),
            _fmt(_ratio(base.get("ms_per_step"), a.get("ms_per_step")), 2),
            _fmt(a.get("best_ms_per_step"), 0),
            _fmt(b.get("best_ms_per_step"), 0),
            _fmt(_ratio(a.get("best_ms_per_step"), b.get("best_ms_per_step")), 2),
            _fmt(_ratio(base.get("best_ms_per_step"), a.get("best_ms_per_step")), 2),
            _fmt(a.get("data_wait_ms")),
            _fmt(a.get("peak_mib"), 0),
            _fmt(b.get("peak_mib"), 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
