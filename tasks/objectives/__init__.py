"""Auxiliary training objectives, behind one protocol: the fine-tuning loop (tasks/training.py) knows none by name.

An `Objective` is a frozen settings object (what the stage code builds from the config). For one fine-tune the loop
calls `bind(context)` and gets an `ObjectiveRun`: the heads it trains and checkpoints beside the model (never saved
with it), a `setup()` run once before the first epoch of a fresh (not resumed) run, a `loss(...)` added to the
classification loss at every step, and `close()`. `fingerprint()` goes into the run key; `describe()` is the one-line
strategy summary the stage logs.

The two here, `masked_lm.MaskedLMObjective` (`target_mlm`) and `domain_adversarial.AdversarialObjective`
(`domain_adversarial`), measured no gain with MiniLM and are off by default; each module gives its figure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch


@dataclass(frozen=True)
class TrainingContext:
    """What an objective may read of the fine-tune it joins. `train` is the labelled training frame (its row order is
    what the step's `batch` indices point into); `precision` is the resolved autocast precision."""

    model: Any
    tokenizer: Any
    train: pd.DataFrame
    max_length: int
    batch_size: int
    seed: int
    device: torch.device
    precision: str


class ObjectiveRun(Protocol):
    """An objective bound to one fine-tune's model and tokenizer."""

    heads: Mapping[str, torch.nn.Module]  # trained and checkpointed with the model, not saved with it

    def setup(self) -> dict[str, Any]:
        """Run once before epoch 1 of a fresh run (not on resume); returns entries for the run record's `extra`."""
        ...

    def loss(self, epoch: int, step: int, batch: np.ndarray, progress: float) -> torch.Tensor:
        """The further loss of `step` (0-based) of `epoch` (1-based), right after the classification forward of the
        `train` rows `batch`; `progress` is the share of training done after this step, in (0, 1]."""
        ...

    def close(self) -> None:
        """Release what `bind` attached to the model (hooks); called when training ends, also on an error."""
        ...


class Objective(Protocol):
    """An auxiliary objective's settings."""

    def bind(self, context: TrainingContext) -> ObjectiveRun: ...

    def fingerprint(self) -> list[Any]:
        """JSON-serialisable: everything of this objective that decides the trained weights (for the run key)."""
        ...

    def describe(self) -> str:
        """One line for the applied-strategies list, e.g. 'target_mlm (masked-LM weight 0.1 on 1595 target texts)'."""
        ...


def texts_digest(texts: tuple[str, ...]) -> str:
    """A hash of an objective's texts for its fingerprint."""
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()


AuxiliaryLoss = Callable[[int, np.ndarray], torch.Tensor]  # (step, the batch's row indices) -> a further loss


def heads_of(runs: list[ObjectiveRun]) -> dict[str, torch.nn.Module]:
    """The objectives' heads by name, trained and checkpointed beside the model ('model')."""
    heads: dict[str, torch.nn.Module] = {}
    for run in runs:
        clash = set(run.heads) & (set(heads) | {"model"})
        if clash:
            raise ValueError(f"training objective head name {min(clash)!r} is taken (by another objective's head, or "
                             "'model' by the classifier); give each head its own name")
        heads.update(run.heads)
    return heads


def combined_loss(runs: list[ObjectiveRun], epoch: int, batches_per_epoch: int, epochs: int) -> AuxiliaryLoss:
    """The objectives' further losses at each step of one epoch, summed in their order."""

    def loss(step: int, batch: np.ndarray) -> torch.Tensor:
        done = ((epoch - 1) * batches_per_epoch + step + 1) / (epochs * batches_per_epoch)
        total = None
        for run in runs:
            term = run.loss(epoch, step, batch, done)
            total = term if total is None else total + term
        return total

    return loss
