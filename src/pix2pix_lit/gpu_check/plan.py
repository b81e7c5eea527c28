"""The stages of ``make gpu-check``, in order of priority, each a command with a time limit.

The GPU plan: what the device is; the packages installed from wheels; ``pytest -m gpu``; host-device
syncs per step; the bench's GPU rows (256×256, U-Net256 + PatchGAN70, batch 1, 16 and 128, one
subprocess per row), with two 2-epoch facades trainings (the recipe as is and with perf=graph),
whose epoch times give the 200-epoch wall time, after the first four rows.
The overall budget cuts the tail of the list, so the stages most needed come first; ``--only``
picks stages by name for a second call.

The dry-run plan has the same kinds of stage on a CPU at tiny sizes (32×32 crops of generated
pairs, 5-level U-Nets with 8 filters), one case of each kind where the GPU plan has several:
the syncs of perf=graph (in its eager fallback), the fp32 and perf=graph bench rows, the
recipe's two epochs. The compile rows are left out (minutes of compilation on a CPU).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

#: The source tree this package runs from (the GPU machine runs the checkout, not a wheel).
SRC = Path(__file__).resolve().parents[2]
TESTS = SRC.parent / "tests"


@dataclass(frozen=True)
class Stage:
    """One command. ``kind`` says how its output becomes table rows
    (:mod:`~pix2pix_lit.gpu_check.results`); ``result`` is the JSON file it writes, if any."""

    name: str
    kind: str
    argv: tuple[str, ...]
    timeout_s: float
    result: Path | None = None
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Where things are, and whether this is the CPU dry run."""

    work: Path
    data_root: Path | None
    dry_run: bool
    python: str = sys.executable


@dataclass(frozen=True)
class Sizes:
    """Image and network sizes, batches and step counts of a plan."""

    size: int
    batches: tuple[int, ...]
    warmup: int
    steps: int
    trainer: str
    overrides: tuple[str, ...] = ()
    #: multiplies every stage's time limit (a shared CPU starts Python processes slowly)
    time_scale: float = 1.0


GPU_SIZES = Sizes(size=256, batches=(1, 16, 128), warmup=3, steps=10, trainer="trainer=gpu")
DRY_SIZES = Sizes(
    size=32,
    batches=(2,),
    warmup=1,
    steps=2,
    trainer="trainer=cpu",
    overrides=(
        "model.num_downs=5",
        "model.ngf=8",
        "discriminator.ndf=8",
        "data.load_size=36",
        "data.crop_size=32",
        "data.num_workers=0",
    ),
    time_scale=5.0,
)

#: The recipe's length (conf/experiment/facades_pix2pix.yaml: 100 + 100 epochs).
RECIPE_EPOCHS = 200
#: Bench rows: name, sides timed (the plain loop where Lightning's overhead matters most),
#: time limit in seconds, and whether the dry run has it.
BENCH_ROWS: list[tuple[str, tuple[str, ...], float, bool]] = [
    ("fp32", ("lightning", "plain"), 75, True),
    ("perf=fast", ("lightning", "plain"), 60, False),
    ("cuda_graph", ("lightning", "plain"), 75, False),
    ("perf=graph", ("lightning", "plain"), 75, True),
    ("bf16", ("lightning",), 45, False),
    ("channels_last", ("lightning",), 45, False),
    ("perf=fast in_memory", ("lightning",), 45, False),
    ("perf=compile", ("lightning",), 150, False),
    ("perf=gpu", ("lightning",), 150, False),
]
#: Host-device sync cases: the recipe's step (its non-finite check syncs), without the check,
#: and the CUDA-graph preset.
SYNC_CASES = {
    "recipe": (),
    "nonfinite_patience=0": ("task.nonfinite_patience=0",),
    "perf=graph": ("perf=graph",),
}
#: End-to-end cases: the paper's recipe as it is, and with the CUDA-graph preset.
E2E_CASES = {"recipe": (), "perf=graph": ("perf=graph",)}
#: The dry run's one case of each kind (each stage costs a Python start-up on a CPU).
DRY_RUN_SYNCS, DRY_RUN_E2E = "perf=graph", "recipe"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def _module(settings: Settings, module: str, *args: str) -> tuple[str, ...]:
    return (settings.python, "-m", module, *args)


def _train_run(
    settings: Settings, sizes: Sizes, name: str, overrides: tuple[str, ...], callback: str
) -> tuple[tuple[str, ...], Path]:
    """The train CLI with one of this package's callbacks, writing its JSON to ``result``."""
    result = settings.work / f"{_slug(name)}.json"
    argv = _module(
        settings,
        "pix2pix_lit.train",
        sizes.trainer,
        f"data.root={settings.work / 'data' if settings.data_root is None else settings.data_root}",
        "data.verify_images=false",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={settings.work / 'runs' / _slug(name)}",
        f"++callbacks.{callback}._target_=pix2pix_lit.gpu_check.callbacks.{callback}",
        f"++callbacks.{callback}.path={result}",
        *sizes.overrides,
        *overrides,
    )
    return argv, result


def build_plan(settings: Settings) -> list[Stage]:
    """Every stage, most needed first."""
    sizes = DRY_SIZES if settings.dry_run else GPU_SIZES
    work = settings.work
    stages = [
        Stage(
            "device",
            "probe",
            _module(settings, "pix2pix_lit.gpu_check.probe", str(work / "probe.json")),
            60,
            work / "probe.json",
        ),
        Stage(
            "packages",
            "packages",
            _module(settings, "pix2pix_lit.gpu_check.packages", str(work / "packages.json")),
            60,
            work / "packages.json",
        ),
    ]
    if settings.data_root is None:
        counts = {"train": 8, "test": 2} if settings.dry_run else {"train": 400, "test": 106}
        make = (
            "import sys; from pix2pix_lit.data import make_synthetic_paired_dataset as make; "
            f"make(sys.argv[1], {counts}, size={sizes.size})"
        )
        stages.append(
            Stage(
                "data (generated pairs)",
                "plain",
                (settings.python, "-c", make, str(work / "data")),
                120,
            )
        )
    tests = [str(TESTS / "test_graphed_step.py")] if settings.dry_run else [str(TESTS)]
    # a test module importing what the GPU machine lacks (a sweeper plugin) must not stop the
    # GPU tests of the others
    tests.append("--continue-on-collection-errors")
    stages.append(
        Stage(
            "pytest -m gpu",
            "pytest",
            _module(
                settings,
                "pytest",
                "-m",
                "gpu",
                "-p",
                "no:xdist",
                "-p",
                "no:cacheprovider",
                "-q",
                *tests,
            ),
            180,
        )
    )
    counted = sizes.warmup + sizes.steps
    for case, overrides in SYNC_CASES.items():
        if settings.dry_run and case != DRY_RUN_SYNCS:
            continue
        argv, result = _train_run(
            settings,
            sizes,
            f"syncs {case}",
            (
                "logger=none",
                "callbacks=none",
                "trainer.max_epochs=1",
                f"trainer.limit_train_batches={counted + 1}",
                "trainer.limit_val_batches=0",
                "trainer.num_sanity_val_steps=0",
                "++trainer.enable_checkpointing=false",
                "optimized_metric=null",  # not validated: no val/L1 to return
                f"++callbacks.CountSyncs.skip={sizes.warmup}",
                *overrides,
            ),
            "CountSyncs",
        )
        stages.append(Stage(f"syncs {case}", "syncs", argv, 60, result))
    bench_root = work / "data" if settings.data_root is None else settings.data_root
    for row, sides, timeout_s, in_dry_run in BENCH_ROWS:
        if settings.dry_run and not in_dry_run:
            continue
        name = f"bench {row}"
        args = (
            "--rows", row, "--batch", *map(str, sizes.batches), "--size", str(sizes.size),
            "--warmup", str(sizes.warmup), "--steps", str(sizes.steps),
            "--data-root", str(bench_root), "--out", str(work / "bench"), "--name", _slug(name),
            "--sides", *sides, "--", "data.verify_images=false", *sizes.overrides,
        )  # fmt: skip
        stages.append(
            Stage(
                name,
                "bench",
                _module(settings, "pix2pix_lit.bench", *args),
                timeout_s,
                work / "bench" / f"{_slug(name)}.json",
            )
        )
        if row == "perf=graph":  # the 200-epoch estimates before the remaining rows
            stages.extend(
                _end_to_end(settings, sizes, case)
                for case in E2E_CASES
                if not settings.dry_run or case == DRY_RUN_E2E
            )
    return [replace(s, timeout_s=s.timeout_s * sizes.time_scale) for s in stages]


def _end_to_end(settings: Settings, sizes: Sizes, case: str) -> Stage:
    name = f"facades 2 epochs {case}"
    argv, result = _train_run(
        settings,
        sizes,
        name,
        ("experiment=facades_pix2pix", "trainer.max_epochs=2", *E2E_CASES[case]),
        "EpochClock",
    )
    return Stage(name, "e2e", argv, 150, result, {"epochs": 2, "recipe_epochs": RECIPE_EPOCHS})
