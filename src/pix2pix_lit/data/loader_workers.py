"""What runs first in each data-loader worker process: the run keeps the say over SIGTERM."""

from __future__ import annotations

import os
import signal

from lightning.fabric.utilities.seed import pl_worker_init_function


def init_loader_worker(worker_id: int, rank: int = 0) -> None:
    """Ignore SIGTERM, then seed the worker as Lightning would.

    A SIGTERM to the whole process group (SLURM's ``scancel`` and time limit, ``kill --
    -<pgid>``, a container's stop) reaches the loader workers as well as the run. Torch's
    worker dies of a SIGTERM its parent did not send, and the run then ends with "a data-loader
    worker died" before it can stop after its batch and save its emergency checkpoint. Ignoring
    it, the worker serves batches until the run shuts the loader down (and exits by itself
    when the run's process is gone: torch's watchdog).

    Setting a ``worker_init_fn`` stops Lightning from adding its own, so its seeding is called
    here, as Lightning would call it (``seed_everything(..., workers=True)``).
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if int(os.environ.get("PL_SEED_WORKERS", 0)):
        pl_worker_init_function(worker_id, rank=rank)
