"""The gpu-check table: one markdown file and one JSON file named after the device in ``out``,
and a log of every stage's output in ``log_dir``, rewritten after every stage (and copied to
``copy_to``, e.g. the device tool's ``$OUT``, whose files come back even when the command is
stopped)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pix2pix_lit.gpu_check.results import Row

TARGETS = (
    "Targets (issue #19, H100): ≥ 200 / 1,500 / 3,000 img/s end to end at batch 1 / 16 / 128 "
    "at 256×256; the 200-epoch facades recipe at batch 1 in < 8 minutes."
)
HEADER = (
    "| stage | what | batch | status | img/s | ms/step | plain img/s | Lightning ÷ plain "
    "| vs fp32 | peak MiB | s | notes |"
)
#: Lines of each stage's output kept in the log.
LOG_LINES = 120


def _cell(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


@dataclass
class Report:
    out: Path
    log_dir: Path
    dry_run: bool
    budget_s: float
    copy_to: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        slug = self.info.get("slug", "unknown-device")
        return f"gpu-check-dry-run-{slug}" if self.dry_run else f"gpu-check-{slug}"

    def add(self, stage: str, rows: list[Row], status: str, seconds: float, output: str) -> None:
        self.rows.extend(rows)
        tail = output.splitlines()[-LOG_LINES:]
        self.log += [f"===== {stage}: {status} after {seconds:.1f} s", *tail, ""]

    def _vs_fp32(self, r: Row) -> float | None:
        base = next(
            (
                b
                for b in self.rows
                if b["what"] == "fp32" and b["batch"] == r["batch"] and b["ms_step"]
            ),
            None,
        )
        if r["stage"].startswith("bench") and base and r["ms_step"]:
            return round(base["ms_step"] / r["ms_step"], 2)
        return None

    def markdown(self, finished: bool) -> str:
        info = self.info
        device = info.get("gpu") or "no GPU"
        details = [f"CPU {info.get('cpu', '?')} ×{info.get('cpu_count', '?')}"]
        if info.get("gpu"):
            details.insert(
                0, f"{info['gpu_memory_gib']} GiB, compute capability {info['capability']}"
            )
        cuda = f"CUDA {info['cuda']}" if info.get("cuda") else "CPU build"
        versions = (
            f"torch {info.get('torch', '?')} ({cuda}), Lightning {info.get('lightning', '?')}, "
            f"Python {info.get('python', '?')}"
        )
        elapsed = time.time() - self.started
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.started))
        state = "finished" if finished else "still running (partial results)"
        lines = [
            f"# make gpu-check{' (dry run)' if self.dry_run else ''}: {device}",
            "",
            f"{device}: {', '.join(details)}; {versions}. {when}; {elapsed:.0f} s of the "
            f"{self.budget_s:.0f} s budget used, {state}.",
            "",
            TARGETS,
            "",
            HEADER,
            "|" + "---|" * 12,
        ]
        for r in self.rows:
            cells = [
                r["stage"], r["what"], r["batch"], r["status"], _cell(r["img_s"], 2),
                _cell(r["ms_step"], 1), _cell(r["plain_img_s"], 2), _cell(r["lightning_vs_plain"], 2),
                _cell(self._vs_fp32(r), 2), _cell(r["peak_mib"], 0), _cell(r["seconds"], 1), r["notes"],
            ]  # fmt: skip
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def write(self, finished: bool = False) -> list[Path]:
        """Write the table (markdown, JSON) and the log; return the paths written."""
        rows = [r | {"vs_fp32": self._vs_fp32(r)} for r in self.rows]
        report = {
            "device": self.info,
            "dry_run": self.dry_run,
            "budget_s": self.budget_s,
            "elapsed_s": round(time.time() - self.started, 1),
            "finished": finished,
            "rows": rows,
        }
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        paths = [self.out / f"{self.name}{ext}" for ext in (".md", ".json")]
        paths.append(self.log_dir / f"{self.name}.log")
        paths[0].write_text(self.markdown(finished))
        paths[1].write_text(json.dumps(report, indent=2) + "\n")
        paths[2].write_text("\n".join(self.log) + "\n")
        if self.copy_to is not None:
            self.copy_to.mkdir(parents=True, exist_ok=True)
            for path in paths:
                shutil.copy(path, self.copy_to / path.name)
        return paths
