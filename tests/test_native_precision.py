"""perf=fast picks the mixed precision the hardware computes natively, and says which."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir

from pix2pix_lit import hardware
from pix2pix_lit.config import config_dir


def _fast_precision(*overrides: str) -> str:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=["perf=fast", *overrides])
    return cfg.trainer.precision


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_perf_fast_uses_bf16_only_where_the_device_computes_it(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    asked: list[str] = []

    def computes(accelerator: str) -> bool:
        asked.append(accelerator)
        return native

    monkeypatch.setattr(hardware, "computes_bf16_natively", computes)
    assert _fast_precision("trainer=cpu") == expected
    assert asked == ["cpu"]  # the trainer's accelerator decides, not the machine's default


def test_an_explicit_precision_wins_over_the_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "computes_bf16_natively", lambda accelerator: False)
    assert _fast_precision("trainer.precision=bf16-mixed") == "bf16-mixed"


def test_a_cpu_counts_as_native_exactly_when_onednn_has_bf16_kernels() -> None:
    expected = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert hardware.computes_bf16_natively("cpu") is expected
    assert hardware.native_mixed_precision("cpu") == ("bf16-mixed" if expected else "32-true")


def test_emulated_bf16_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "computes_bf16_natively", lambda accelerator: False)
    line = hardware.slow_precision_warning("bf16-mixed", "cpu")
    assert line is not None and "\n" not in line
    assert "trainer.precision=bf16-mixed" in line and "trainer.precision=32-true" in line
    assert hardware.slow_precision_warning("32-true", "cpu") is None
    monkeypatch.setattr(hardware, "computes_bf16_natively", lambda accelerator: True)
    assert hardware.slow_precision_warning("bf16-mixed", "cpu") is None
