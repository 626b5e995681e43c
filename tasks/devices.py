"""Where the engine computes and in which precision: CPU or a CUDA GPU, fp32 or bf16 autocast.

`auto` picks a CUDA GPU when torch sees one, else the CPU; bf16 where the device computes it natively (a CUDA GPU
with bf16 support; a CPU with AVX512-BF16 or AMX), else fp32. Batches are built on the CPU and moved with `to_device`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch

from tasks.attention_kernels import shape_free_attention
from tasks.config import DEVICE_CHOICES, TrainConfig
from tasks.cpu_features import cpu_precision
from tasks.errors import ConfigError

DEVICE_PATTERN = re.compile(DEVICE_CHOICES)


def resolve_device(setting: str = "auto") -> torch.device:
    """`auto` -> `cuda` when a CUDA GPU is visible, else `cpu`; `cpu` / `cuda` / `cuda:N` as given, if present."""
    if not DEVICE_PATTERN.fullmatch(setting):
        raise ConfigError(f"train.device: {setting!r} is not a device; use auto, cpu, cuda or cuda:N")
    if setting == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(setting)
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise ConfigError(f"train.device: {setting} asked for, but torch sees no CUDA GPU; use auto or cpu")
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise ConfigError(f"train.device: {setting} asked for, but torch sees {torch.cuda.device_count()} "
                                  "CUDA GPU(s); pick one of them or use auto")
    shape_free_attention(device)
    return device


def resolve_precision(setting: str, device: torch.device | str = "cpu") -> str:
    """`auto` -> `bf16` where `device` computes bf16 natively, else `fp32`; `fp32` / `bf16` as given."""
    if setting != "auto":
        return setting
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return cpu_precision(setting)


def placement(train: TrainConfig) -> tuple[torch.device, str]:
    """The device and the resolved precision that `train.device` and `train.precision` ask for."""
    device = resolve_device(train.device)
    return device, resolve_precision(train.precision, device)


def autocast(precision: str, device: torch.device | str = "cpu"):
    """An autocast context on `device` for `precision` (a no-op for fp32)."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def device_of(model: torch.nn.Module) -> torch.device:
    """The device holding `model`'s parameters (the CPU for a model without any)."""
    return next((parameter.device for parameter in model.parameters()), torch.device("cpu"))


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """`batch` with every tensor on `device` (non-blocking from the CPU)."""
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set to `threads` inside the block, and the process's own count back once the last
    block open in any thread ends: the setting is process-wide, so candidates that set it in a thread pool would
    otherwise leave every later fine-tune in the process on their count."""
    with _THREADS_LOCK:
        if not _OPEN_BLOCKS:
            _SAVED_THREADS.append(torch.get_num_threads())
        _OPEN_BLOCKS.append(threads)
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _OPEN_BLOCKS.pop()
            if not _OPEN_BLOCKS:
                torch.set_num_threads(_SAVED_THREADS.pop())


_THREADS_LOCK = threading.Lock()
_OPEN_BLOCKS: list[int] = []
_SAVED_THREADS: list[int] = []
