"""Which attention kernels torch may pick where the engine runs. Shipped beside the registered model (code_paths),
so that the served model follows the same rule as training and evaluation."""

from __future__ import annotations

import torch


def shape_free_attention(device: torch.device | str) -> None:
    """On a CUDA GPU, take cuDNN out of torch's attention kernels (process-wide). The engine pads each batch to its
    own longest text, so nearly every batch has a new shape, and cuDNN's attention builds an execution plan for
    each new shape (0.4-1 s on recent GPUs, modelscope/FunASR#3704); flash and memory-efficient attention do not.
    On the lent H200 the engine trained at 0.25x the fixed-shape naive loop with cuDNN attention in play
    (BENCHMARKS.md). A CPU is left as it is."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)
