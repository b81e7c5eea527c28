"""Resident memory of a training process over many steps (a leak shows as steady growth).

    PYTHONPATH=src python experiments/robustness/memory_over_steps.py <out dir> [steps]

Trains the tiny synthetic setup (32x32 pairs, a 5-level U-Net with 8 filters) in this process
for ``steps`` generator steps and prints the resident set size (VmRSS) every 250 steps, as
``step,rss_mib`` lines, then the growth from the first sample after warm-up (step 500) to the
last. Writes its run under <out dir>; nothing in the repository.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from helpers import run_tiny

EVERY = 250


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


class RecordMemory(L.Callback):
    def __init__(self) -> None:
        self.samples: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        if step % EVERY == 0:
            self.samples.append((step, rss_mib()))
            print(f"{step},{self.samples[-1][1]:.1f}", flush=True)


RECORDER = RecordMemory()


def recorder() -> RecordMemory:
    return RECORDER


def main(out: Path, steps: int) -> None:
    run_tiny(
        out,
        "data.image_size=32",
        "data.load_size=36",
        "data.crop_size=32",
        "data.num_images.train=400",
        "model.num_downs=5",
        "trainer.max_epochs=-1",
        f"++trainer.max_steps={2 * steps}",  # two optimizer steps a batch
        "trainer.limit_val_batches=1",
        "trainer.check_val_every_n_epoch=5",
        "trainer.num_sanity_val_steps=0",
        "logger=csv",
        "+callbacks.memory._target_=__main__.recorder",
    )
    warm = [rss for step, rss in RECORDER.samples if step >= 500]
    print(
        f"growth after warm-up: {100 * (warm[-1] / warm[0] - 1):+.1f}% ({warm[0]:.0f} -> {warm[-1]:.0f} MiB)"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5000)
