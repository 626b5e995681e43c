"""The fine-tune's optimizer and per-sample loss weights: AdamW (no decay on biases and LayerNorm) with linear
warm-up and decay; weights scaled to mean 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from tasks.config import TrainConfig
from tasks.errors import TrainingError


def make_optimizer(model: torch.nn.Module, config: TrainConfig, total_steps: int):
    """AdamW over `model`'s trainable parameters (the head's at `head_learning_rate` when set) and its warm-up +
    linear-decay schedule over `total_steps`."""
    from transformers import get_linear_schedule_with_warmup

    from tasks.linear_probe import head_parameter_ids

    head = head_parameter_ids(model) if config.head_learning_rate is not None else set()
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            decays = not (parameter.ndim < 2 or "LayerNorm" in name)
            groups.setdefault((id(parameter) in head, decays), []).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": params, "weight_decay": config.weight_decay if decays else 0.0,
          "lr": config.head_learning_rate if in_head else config.learning_rate}
         for (in_head, decays), params in sorted(groups.items(), key=lambda item: (item[0][0], not item[0][1]))],
        lr=config.learning_rate,
    )
    warmup = round(config.warmup_ratio * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, max(total_steps, 1))


def normalised_weights(train: pd.DataFrame) -> torch.Tensor:
    """Per-sample loss weights scaled to mean 1 (all ones when the frame has no `weight` column)."""
    if "weight" not in train.columns:
        return torch.ones(len(train))
    weights = torch.tensor(train["weight"].to_numpy(dtype=np.float32))
    if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise TrainingError("sample weights must be finite, non-negative and not all zero")
    return weights / weights.mean()
