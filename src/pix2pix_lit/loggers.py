"""Loggers that never block an unattended run nor lose the metrics of a resumed one, and
group sweeps in W&B."""

from __future__ import annotations

import csv
import importlib.util
import netrc
import os
import secrets
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from pix2pix_lit.config import override_key
from pix2pix_lit.errors import ConfigError
from pix2pix_lit.launching.sweep_job import current_sweep_job
from pix2pix_lit.utils.images import to_uint8

RUN_ID_ALPHABET = string.ascii_lowercase + string.digits
# W&B rejects longer tags.
MAX_TAG_LENGTH = 64
# The top-level keys whose overrides are not made tags: where files live (paths.*), which
# is not what was trained, and the tags themselves.
UNTAGGED_KEYS = ("paths", "tags")
# The W&B summary of each validation metric is its best value over the epochs, so the runs
# table ranks runs by their best epoch rather than their last.
SUMMARY_OF_BEST = {"val/L1": "min", "val/PSNR": "max", "val/SSIM": "max"}


def require_logger_package(logger: str, package: str) -> None:
    """Stop with a one-line error when ``logger=<logger>`` lacks its optional package."""
    if importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"logger={logger} needs the {package} package, which is not installed: "
            f"pip install 'pix2pix-lit[{logger}]' (or choose logger=csv)"
        )


def tensorboard_logger(**kwargs: Any) -> TensorBoardLogger:
    """Lightning's :class:`TensorBoardLogger`, once the optional ``tensorboard`` is found."""
    require_logger_package("tensorboard", "tensorboard")
    return TensorBoardLogger(**kwargs)


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config → one level of dotted keys (``{"loss": {"lambda_l1": 100}}`` →
    ``{"loss.lambda_l1": 100}``), so W&B's runs table filters and groups by any key."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def config_choices() -> dict[str, str | None]:
    """The option chosen in each config group (``model`` → ``unet256``, ``loss`` →
    ``vanilla``), Hydra's own groups left out; empty outside of Hydra."""
    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {group: choice for group, choice in choices.items() if not group.startswith("hydra")}


def wandb_credentials_available() -> bool:
    """Whether W&B could log in without asking: an API key in the env or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1]
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def override_tags(overrides: tuple[str, ...]) -> list[str]:
    """A sweep job's overrides as W&B tags (``loss.lambda_l1=10``), those W&B accepts."""
    return [
        o
        for o in overrides
        if len(o) <= MAX_TAG_LENGTH and override_key(o).split(".")[0] not in UNTAGGED_KEYS
    ]


class ResumingCSVWriter(ExperimentWriter):
    """Lightning's CSV writer, except that it keeps the metrics file an earlier session of
    the run wrote (Lightning's deletes it, and a resumed run would lose the metrics of all
    steps before the checkpoint it resumed from).

    Rows from before the first step this session logs stay; rows from that step on were
    logged after the checkpoint this session resumed from, and are replaced by this
    session's.
    """

    def _check_log_dir_exists(self) -> None:
        self._resuming = self._fs.isfile(self.metrics_file_path)

    def save(self) -> None:
        if self._resuming and self.metrics:
            self._keep_rows_before(min(int(m["step"]) for m in self.metrics))
            self._resuming = False
        super().save()

    def _keep_rows_before(self, step: int) -> None:
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            rows = [row for row in reader if int(row["step"]) < step]
            # the file's columns: save() appends under them, or rewrites with new ones added
            self.metrics_keys = sorted(reader.fieldnames or [])
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


class ResumingCSVLogger(CSVLogger):
    """A :class:`CSVLogger` whose ``metrics.csv`` goes on across resumed sessions of a run
    (see :class:`ResumingCSVWriter`)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ResumingCSVWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ResumingCSVWriter(log_dir=self.log_dir)
        return self._experiment


class FallbackWandbLogger(WandbLogger):
    """A :class:`WandbLogger` that logs offline when W&B cannot start an online run (server
    unreachable, a rejected key) instead of failing the training run, and that makes the
    run comparable in W&B's runs table.

    W&B gives up after ``WANDB_INIT_TIMEOUT`` seconds (90 by default); the run then goes on
    with its W&B run written under ``save_dir/wandb``, to upload later with ``wandb sync``.

    The run config holds every config key flattened (``loss.lambda_l1``) and the option
    chosen in each group (``model: unet256``); the summary of each validation metric is its
    best epoch (:data:`SUMMARY_OF_BEST`).
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None:
            run = self._start_run()
            for name, summary in SUMMARY_OF_BEST.items():
                # Lightning's "*" rule puts every metric on trainer/global_step; a metric's
                # own definition replaces it, so it repeats the step axis.
                run.define_metric(
                    name, step_metric="trainer/global_step", step_sync=True, summary=summary
                )
        return self._experiment

    def _start_run(self) -> Any:
        import wandb

        try:
            return super().experiment
        except wandb.errors.Error as err:
            if self._offline:
                raise
            reason = " ".join(str(err).split())
            rank_zero_warn(
                f"W&B could not start an online run ({reason}); logging offline under "
                f"{self.save_dir}/wandb instead (upload it later with `wandb sync`)"
            )
            self._offline = True
            self._wandb_init["mode"] = "offline"
            # an offline run under the online run's id would replace it when synced
            self._wandb_init["id"] = None
            return super().experiment

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        # Only checkpoints chosen by a metric become artifacts: Lightning would also log the
        # unmonitored last.ckpt under the same artifact name, taking the "best" alias along.
        if checkpoint_callback.monitor is not None:
            super().after_save_checkpoint(checkpoint_callback)

    def log_hyperparams(self, params: Any) -> None:
        """Log ``params`` flattened, with the chosen config options (see the class)."""
        super().log_hyperparams({**config_choices(), **flat_config(params)})


def log_samples_table(
    logger: WandbLogger, columns: Mapping[str, Tensor], epoch: int, step: int
) -> None:
    """Log validation samples as the W&B table ``val/samples_table``: a row per image
    (``epoch``, ``image`` = its index, then one image per column, e.g. input | output |
    target), so two runs can be compared image by image, epoch by epoch."""
    import wandb

    images = {name: to_uint8(batch).permute(0, 2, 3, 1).numpy() for name, batch in columns.items()}
    count = len(next(iter(images.values())))
    rows = [[epoch, i, *(wandb.Image(images[name][i]) for name in images)] for i in range(count)]
    logger.log_table("val/samples_table", columns=["epoch", "image", *images], data=rows, step=step)


def persistent_run_id(save_dir: str | Path) -> str:
    """The W&B run id of the training run whose folder is ``save_dir``: drawn once and kept
    in ``save_dir/wandb/run_id``, so every session of a resumed run logs to one W&B run."""
    path = Path(save_dir) / "wandb" / "run_id"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        drawn = path.with_name(f".run_id.{os.getpid()}")
        # W&B's own ids: 8 characters from [a-z0-9]
        drawn.write_text("".join(secrets.choice(RUN_ID_ALPHABET) for _ in range(8)))
        try:
            os.link(drawn, path)  # complete or absent: the first process of the run wins
        except FileExistsError:
            pass
        finally:
            drawn.unlink()
    return path.read_text().strip()


def wandb_logger(
    save_dir: str | Path,
    offline: bool | None = None,
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | tuple[str, ...] = (),
    job_type: str | None = None,
    **kwargs: Any,
) -> WandbLogger:
    """A :class:`WandbLogger` that runs offline unless W&B credentials are configured.

    ``offline=None`` decides from the environment: ``WANDB_MODE=offline|disabled`` or no
    API key → offline (the run is written under ``save_dir/wandb``; upload it later with
    ``wandb sync``). W&B is told never to prompt for a login.

    In a multirun every job's run joins one group, ``group`` or else ``<name>_<sweep folder>``
    (the folder is the sweep's timestamp), is named ``<name>-<job number>``, has the job type
    ``sweep`` (``train`` outside a sweep; ``job_type`` overrides both) and is tagged with the
    job's overrides besides ``tags``, so W&B lines up the runs of a sweep.
    """
    require_logger_package("wandb", "wandb")
    sweep = current_sweep_job()
    if sweep is not None:
        prefix = name or "sweep"
        group = group or sweep.group(prefix)
        name = f"{prefix}-{sweep.num}"
        tags = [*tags, *(t for t in override_tags(sweep.overrides) if t not in tags)]
    job_type = job_type or ("train" if sweep is None else "sweep")
    os.environ.setdefault("WANDB_SILENT", "true")
    mode = os.environ.get("WANDB_MODE", "")
    if offline is None:
        offline = mode in ("offline", "dryrun", "disabled") or not wandb_credentials_available()
        if offline:
            rank_zero_info("W&B: no API key found, logging offline (upload with `wandb sync`).")
    if offline and mode != "disabled":
        os.environ["WANDB_MODE"] = "offline"
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    if not offline and "id" not in kwargs:
        # Online, a resumed run continues its W&B run. Offline runs keep their own ids:
        # `wandb sync` of two offline runs with one id keeps only one (wandb/wandb#3841).
        kwargs["id"] = persistent_run_id(save_dir)  # Lightning passes resume="allow"
    if offline and kwargs.get("log_model") and mode != "disabled":
        # Lightning refuses log_model with offline=True, but an offline W&B run keeps its
        # artifacts for `wandb sync` to upload: tell W&B itself to run offline instead.
        kwargs["mode"] = "offline"
    return FallbackWandbLogger(
        save_dir=str(save_dir),
        offline=offline and "mode" not in kwargs,
        name=name,
        group=group or None,
        tags=list(tags),
        job_type=job_type,
        **kwargs,
    )
