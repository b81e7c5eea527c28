"""How a DDP run's extra processes start when the run is a job of a Hydra sweep.

Lightning's launcher of the extra processes (``start_method=popen``) starts each with this
process's command line; in a sweep (``-m``) that is the whole sweep, and every extra process
would run all its jobs, into new folders. :class:`SweepJobLauncher` starts them with the
command of the running job instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from unittest import mock

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_original_cwd, to_absolute_path
from lightning.pytorch.strategies.launchers import subprocess_script

from pix2pix_lit.launching.sweep_job import in_sweep


class SweepJobLauncher(subprocess_script._SubprocessScriptLauncher):
    """Lightning's launcher of the extra DDP processes, except that in a sweep it starts them
    with the command of the running job (:func:`sweep_job_command`)."""

    def _call_children_scripts(self) -> None:
        if not in_sweep():
            super()._call_children_scripts()
            return
        # The command is built by a module-level function of Lightning's launcher; swapping
        # it for the call keeps the rest of Lightning's launch (environment, ports) as is.
        with mock.patch.object(subprocess_script, "_hydra_subprocess_cmd", sweep_job_command):
            super()._call_children_scripts()


# Hydra's command-line options that choose the config; a job's command keeps them.
_CONFIG_OPTIONS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def sweep_job_command(local_rank: int) -> tuple[list[str], str]:
    """The command (and working directory) that runs extra DDP process ``local_rank`` of the
    running sweep job: the program with the job's own overrides (the swept values resolved),
    in the job's folder, with the job's number (so its seed too)."""
    import __main__  # here, not at the top: it is the program that runs, not a dependency

    hydra = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    command += [*config_options(sys.argv[1:]), *hydra.overrides.task]
    command += [
        f'hydra.run.dir="{hydra.runtime.output_dir}"',
        f"hydra.job.name=train_ddp_process_{local_rank}",
        f"hydra.job.num={hydra.job.num}",
        "hydra.output_subdir=null",
    ]
    return command, get_original_cwd()


def config_options(argv: Sequence[str]) -> list[str]:
    """The options of ``argv`` that choose the config (``-cn name``, ``--config-dir=dir``…)."""
    kept: list[str] = []
    for i, arg in enumerate(argv):
        name = arg.split("=", 1)[0]
        if name in _CONFIG_OPTIONS:
            kept += [arg] if "=" in arg else [arg, *argv[i + 1 : i + 2]]
    return kept
