"""The lock files of a parallel sweep's device slots: one per slot, held by the worker process
that uses the slot until it ends, with what that worker is doing written in it.

A worker claims a free slot the first time it runs a job (:mod:`~pix2pix_lit.launching.device_slots`
decides the device from it) and writes its state there (``<pid> idle|running|stopped``), which
the launcher reads to stop the sweep (:mod:`~pix2pix_lit.launching.sweep_stop`). A slot whose
lock no live process holds is free, whatever its file says.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO

# A worker replaced by joblib may look for a slot before its predecessor's lock is released.
CLAIM_TIMEOUT_S = 60.0

# The slot this process holds and its open lock file (closing it would release the slot).
_held: tuple[int, IO[str]] | None = None


def claim_slot(lock_dir: Path, count: int) -> int:
    """The index of a slot no other live process holds; this process keeps it until it ends."""
    global _held
    if _held is not None:
        return _held[0]
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + CLAIM_TIMEOUT_S
    while True:
        for index in range(count):
            # "a": opening must not truncate the state another process wrote into its slot
            handle = open(lock_dir / f"{index}.lock", "a")  # noqa: SIM115 (held open on purpose)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            _held = (index, handle)
            set_slot_state(IDLE)
            return index
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"all {count} device slots in {lock_dir} are held by other processes; more "
                "jobs run at once than the launcher has slots"
            )
        time.sleep(0.5)


# What the process holding a slot is doing, written into its lock file as "<pid> <state>" for
# the launcher to read when it stops the sweep (pix2pix_lit.launching.sweep_stop).
IDLE, RUNNING, STOPPED = "idle", "running", "stopped"


_state: str | None = None


def set_slot_state(state: str) -> None:
    """Write this process's state into the slot it holds (nothing when it holds none)."""
    global _state
    if _held is None:
        return
    _state = state
    handle = _held[1]
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()} {state}\n")
    handle.flush()


def slot_state() -> str | None:
    """This process's state in the slot it holds; None when it holds none."""
    return _state


def slot_holders(lock_dir: Path) -> dict[int, str]:
    """The live processes holding a slot in ``lock_dir``, each with its state."""
    holders = {}
    for path in sorted(lock_dir.glob("*.lock")):
        with open(path) as handle:
            try:  # a lock this process can take is held by no live process
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                continue
            except BlockingIOError:
                words = handle.read().split()
        if len(words) == 2 and words[0].isdigit():
            holders[int(words[0])] = words[1]
    return holders
