"""Best-epoch tracking and early stopping for the fine-tuning loop, over the state it checkpoints each epoch.

`state` holds `best_epoch`, `best_score` (the validation macro-F1, None until one is scored) and `bad_epochs` (epochs
in a row without a new best); the loop saves it in every checkpoint, so a resumed run stops where the whole one would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.checkpoints import save_weights
from tasks.config import TrainConfig


def fresh_state() -> dict[str, Any]:
    """The trainer state before the first epoch."""
    return {"history": [], "best_epoch": 0, "best_score": None, "bad_epochs": 0}


def track_best(state: dict[str, Any], row: dict[str, Any], model, run_dir: Path) -> None:
    """Update `state` with epoch `row`'s validation score; save the model's weights under `run_dir/best` on a new
    best."""
    score = row["val_macro_f1"]
    if score is None:
        return
    # on a tie the later epoch wins: it has seen more data at a lower learning rate, and a small validation split
    # (10 texts from 50 labelled) ties often; keeping the earlier epoch then throws away the last epoch's training
    if state["best_score"] is None or score >= state["best_score"]:
        state.update(best_score=score, best_epoch=row["epoch"], bad_epochs=0)
        save_weights(model, run_dir / "best")
    else:
        state["bad_epochs"] += 1


def should_stop(state: dict[str, Any], config: TrainConfig) -> bool:
    """Whether `config.early_stopping_patience` epochs in a row brought no new best (never with patience 0)."""
    return config.early_stopping_patience > 0 and state["bad_epochs"] >= config.early_stopping_patience
