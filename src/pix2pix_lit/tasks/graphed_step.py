"""A whole training step captured once as a CUDA graph and replayed for every batch.

At batch 1 a pix2pix step on a fast GPU is a few hundred small kernels whose launches take
longer than their work, so the host sets the pace. Captured once (forward, backward and both
optimizer updates) the step is replayed with one launch (measurements:
experiments/throughput/README.md, "The whole-step CUDA graph").

What capture needs, and how :class:`GraphedStep` meets it (PyTorch's "CUDA Graphs" notes,
whole-network capture):

* **Static inputs**: each batch is copied into the tensors the graph was captured with. A
  batch of another shape (the smaller last batch of an epoch) runs the eager step.
* **No host sync in the step**: the caller refuses configurations that sync (the task's
  non-finite-loss check, for one) before asking for a graph.
* **Optimizer state on the device**: Adam's step counters become device tensors
  (``capturable=True``) and its learning rate a device tensor, refilled in place when a
  scheduler sets a new rate; a float rate would be baked into the graph.
* **Lazy initialisation outside the capture** (optimizer state, cuDNN autotuning, library
  handles): a few warm-up steps run first on the capture stream. Their updates are undone
  (weights, buffers, optimizer state and random generators restored), so the run trains on
  exactly its own batches.
* **Autocast without its weight cache** (cached casts would be freed after the capture):
  Lightning's precision plugin and the bench's plain loop both run so.

Random numbers (dropout masks) are graph-safe: each replay advances the CUDA generator.
Where capture is impossible (no CUDA device, an optimizer without a capturable mode, an op
that cannot be captured) the step runs eagerly after a one-line warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

log = logging.getLogger(__name__)

#: One training step on its input tensors, returning named losses (0-d tensors).
Step = Callable[..., dict[str, Tensor]]


class _TrainingState:
    """Weights, buffers, optimizer state and random generators, saved to undo warm-up steps."""

    def __init__(self, modules: Sequence[nn.Module], optimizers: Sequence[Optimizer]) -> None:
        self.tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
        self.copies = [t.detach().clone() for t in self.tensors]
        self.optimizers = optimizers
        self.states = [
            {
                p: {k: v.clone() for k, v in s.items() if isinstance(v, Tensor)}
                for p, s in o.state.items()
            }
            for o in optimizers
        ]
        self.rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state() if torch.cuda.is_available() else None

    def restore(self) -> None:
        """Back to the saved values, in place: the graph holds these tensors' addresses."""
        with torch.no_grad():
            torch._foreach_copy_(self.tensors, self.copies)
            for optimizer, saved in zip(self.optimizers, self.states, strict=True):
                for param, state in optimizer.state.items():
                    for key, value in state.items():
                        if not isinstance(value, Tensor):
                            continue
                        if param in saved:
                            value.copy_(saved[param][key])
                        else:  # created by the warm-up: a fresh optimizer's state is zeros
                            value.zero_()
        torch.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state(self.cuda_rng)


def make_capturable(optimizer: Optimizer) -> list[tuple[dict, Tensor]]:
    """Switch ``optimizer`` to its capturable mode, in place: step counters on the device and
    the learning rate of each group a device tensor. Returns (group, rate tensor) pairs."""
    rates = []
    optimizer.defaults["capturable"] = True
    for group in optimizer.param_groups:
        device = group["params"][0].device
        group["capturable"] = True
        lr = group["lr"]
        if not isinstance(lr, Tensor) or lr.device != device:
            group["lr"] = torch.tensor(float(lr), dtype=torch.float32, device=device)
        rates.append((group, group["lr"]))
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            if isinstance(state.get("step"), Tensor) and state["step"].device != param.device:
                state["step"] = state["step"].to(param.device, torch.float32)
    return rates


class GraphedStep:
    """Runs ``step`` as a CUDA graph captured on the first call, for inputs of that shape.

    Args:
        step: the training step on its input tensors (forward, backward, optimizer steps),
            returning named losses; it must not sync with the host.
        modules: every module whose weights or buffers the step changes (restored after the
            warm-up steps).
        optimizers: the optimizers the step uses (switched to their capturable mode).
        warmup_steps: eager steps before the capture (undone afterwards).
    """

    def __init__(
        self,
        step: Step,
        modules: Sequence[nn.Module],
        optimizers: Sequence[Optimizer],
        warmup_steps: int = 3,
    ) -> None:
        self.step = step
        self.modules = tuple(modules)
        self.optimizers = tuple(optimizers)
        self.warmup_steps = warmup_steps
        #: why the step runs eagerly (None while a graph is used or still to be captured)
        self.disabled: str | None = None
        self._graph: torch.cuda.CUDAGraph | None = None
        self._inputs: list[Tensor] = []
        self._outputs: dict[str, Tensor] = {}
        self._rates: list[tuple[dict, Tensor]] = []

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def disable(self, reason: str) -> None:
        """Run eagerly from now on; warn once, naming ``reason``."""
        if self.disabled is None:
            log.warning("CUDA graph off: %s; the training step runs eagerly", reason)
        self.disabled = reason

    def fits(self, *inputs: Tensor) -> bool:
        """Whether a replay can take ``inputs`` (True before the capture, which takes any)."""
        if self.disabled is not None:
            return False
        if self._graph is None:
            return True
        # the memory layout may differ: copying into the static inputs converts it
        return all(
            x.shape == s.shape and x.dtype == s.dtype and x.device == s.device
            for x, s in zip(inputs, self._inputs, strict=True)
        )

    def __call__(self, *inputs: Tensor) -> dict[str, Tensor]:
        if self.disabled is None and self._graph is None:
            self._capture(inputs)
        if not self.fits(*inputs):
            return self.step(*inputs)
        for static, new in zip(self._inputs, inputs, strict=True):
            static.copy_(new, non_blocking=True)
        self._refill_rates()
        self._graph.replay()
        # the next replay overwrites the outputs; callers may keep these (logging)
        return {k: v.clone() for k, v in self._outputs.items()}

    def _obstacle(self, inputs: Sequence[Tensor]) -> str | None:
        if not torch.cuda.is_available():
            return "no CUDA device"
        params = [p for o in self.optimizers for g in o.param_groups for p in g["params"]]
        devices = {str(t.device) for t in (*inputs, *params) if t.device.type != "cuda"}
        if devices:
            return f"the step runs on {', '.join(sorted(devices))}, not on a CUDA device"
        for optimizer in self.optimizers:
            if "capturable" not in optimizer.defaults:
                return f"{type(optimizer).__name__} has no capturable mode (Adam and AdamW have)"
        return None

    def _capture(self, inputs: Sequence[Tensor]) -> None:
        reason = self._obstacle(inputs)
        if reason is not None:
            self.disable(reason)
            return
        self._rates = [r for o in self.optimizers for r in make_capturable(o)]
        self._inputs = [x.detach().clone() for x in inputs]  # keeps the memory format
        saved = _TrainingState(self.modules, self.optimizers)
        # Warm-up and capture on one side stream: libraries create their per-stream handles
        # in the warm-up, not in the capture (cf. pytorch PR #187745).
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.stream(stream):
                for _ in range(self.warmup_steps):
                    self.step(*self._inputs)
            torch.cuda.current_stream().wait_stream(stream)
            # Undone before the capture, which records kernels and runs none: the random
            # generators are then untouched by the graph's registration of them.
            saved.restore()
            for optimizer in self.optimizers:
                # gradients are then allocated inside the graph's memory pool
                optimizer.zero_grad(set_to_none=True)
            # thread_local: a loader's pin-memory thread may use CUDA during the capture
            with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
                self._outputs = self.step(*self._inputs)
        except RuntimeError as error:
            torch.cuda.synchronize()
            saved.restore()
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            self.disable(f"capture failed ({first_line[:200]})")
            return
        torch.cuda.current_stream().wait_stream(stream)
        self._graph = graph

    def _refill_rates(self) -> None:
        # A scheduler either fills the rate tensor in place (recent torch) or puts a float
        # in the group; the graph reads only its own tensor, so copy a new float into it.
        for group, tensor in self._rates:
            if group["lr"] is not tensor:
                tensor.fill_(group["lr"])
                group["lr"] = tensor
