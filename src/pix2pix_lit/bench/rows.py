"""The table's rows (speed switches as Hydra overrides) and the train config they apply to.

Both the Lightning run and the plain loop compose their config here, so they see the same
data, networks, objective, optimizers and switches.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from pix2pix_lit.config import config_dir


def _performance(**switches: object) -> list[str]:
    # "++" adds the key or overrides it, whichever the composed config needs.
    target = "++callbacks.performance._target_=pix2pix_lit.callbacks.PerformanceCallback"
    return [target, *(f"++callbacks.performance.{k}={v}" for k, v in switches.items())]


#: Rows of the table: one speed switch at a time on the plain fp32 path, then the presets.
ROWS: dict[str, list[str]] = {
    "fp32": [],
    "bf16": ["trainer.precision=bf16-mixed"],
    "channels_last": _performance(channels_last=True),
    "fused": ["optim.fused=true"],
    "compile": _performance(compile=True),
    "bf16+channels_last": ["trainer.precision=bf16-mixed", *_performance(channels_last=True)],
    "perf=fast": ["perf=fast"],
    "perf=fast workers=0": ["perf=fast", "data.num_workers=0"],
    "perf=fast workers=2": ["perf=fast", "data.num_workers=2"],
    "perf=fast in_memory": ["perf=fast", "data=facades_in_memory"],
    "perf=compile": ["perf=compile"],
    # GPU rows: the whole step as one CUDA graph (eager after a warning elsewhere), the presets
    "cuda_graph": ["task.cuda_graph=true", "task.nonfinite_patience=0"],
    "perf=graph": ["perf=graph"],
    "perf=gpu": ["perf=gpu"],
}
#: Rows run by default on a CPU: not the compile rows (minutes of compilation per run; perf=gpu
#: compiles too), nor the CUDA graph ones (they run the eager step there).
CPU_ROWS = [name for name in ROWS if not any(k in name for k in ("compile", "gpu", "graph"))]


def compose_train_config(overrides: Sequence[str]) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, as ``python -m pix2pix_lit.train`` composes it."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    # The config reads Hydra's runtime values (${hydra:...}) as under the CLI, which also
    # hands the task function the config without its hydra node.
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg
