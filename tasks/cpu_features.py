"""Whether this machine's CPU computes bf16 natively (AVX512-BF16 or AMX tiles), as torch reports it, and so which
precision `auto` means on it.

Imports nothing from adaptflow: the registered MLflow model ships this file beside `tasks/serving.py`, which
decides with it whether the served torch model runs in bf16 (flows/registry.py), as `tasks.devices` does for the
engine.
"""

from __future__ import annotations

import torch


def cpu_bf16_native() -> bool:
    """True where torch's CPU kernels have native bf16 instructions to run (AVX512-BF16 or AMX)."""
    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def cpu_precision(setting: str) -> str:
    """The precision a `train.precision` setting means on this CPU: `auto` -> `bf16` where bf16 is native, else
    `fp32`; `fp32` / `bf16` as given."""
    if setting != "auto":
        return setting
    return "bf16" if cpu_bf16_native() else "fp32"
