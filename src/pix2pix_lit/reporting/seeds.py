"""Jobs that differ only in their seed, read as one row: the mean of a score and its
seed-to-seed spread."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from pix2pix_lit.config import override_key
from pix2pix_lit.reporting.jobs import Job


def is_seed(override: str) -> bool:
    """Whether ``override`` sets the seed (``seed=1``, ``+seed=1``, ``++seed=1``)."""
    return override_key(override) == "seed"


def seed_of(job: Job) -> str:
    """The job's seed as its override gives it ("–": the config's default)."""
    return next((o.partition("=")[2] for o in job.overrides if is_seed(o)), "–")


def group_by_seed(jobs: Sequence[Job]) -> list[list[Job]]:
    """The jobs whose overrides are equal but for the seed, in the order they first appear."""
    groups: dict[tuple[str, ...], list[Job]] = {}
    for job in jobs:
        groups.setdefault(tuple(o for o in job.overrides if not is_seed(o)), []).append(job)
    return list(groups.values())


def mean_and_spread(values: Sequence[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None
