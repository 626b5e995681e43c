"""Epoch checkpoints a re-run can resume from: written to a temp dir, renamed whole, loaded with weights_only.

A checkpoint is complete only when its `state.json` exists (written last, inside the temp dir before the rename);
an incomplete or damaged one is skipped with a message naming its directory.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from tasks.atomic import atomic_dir

log = logging.getLogger(__name__)
STATE_FILE = "state.json"
WEIGHTS_FILE = "model.safetensors"
TRAINING_FILE = "training_state.pt"


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint: where it is and the trainer state saved with it."""

    path: Path
    state: dict[str, Any]

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])


def save_checkpoint(root: Path, epoch: int, model, optimizer, scheduler, state: dict[str, Any]) -> Path:
    """Write `root/epoch-N` atomically and drop older epochs; returns its path."""
    target = root / f"epoch-{epoch}"
    with atomic_dir(target) as temp:
        save_model(model, str(temp / WEIGHTS_FILE))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                   temp / TRAINING_FILE)
        (temp / STATE_FILE).write_text(json.dumps({**state, "epoch": epoch}), encoding="utf-8")
    for older in root.glob("epoch-*"):
        if older != target and _epoch_of(older) < epoch:
            shutil.rmtree(older, ignore_errors=True)
    return target


def latest_checkpoint(root: Path) -> Checkpoint | None:
    """The newest complete checkpoint under `root`, skipping damaged ones with a logged reason."""
    if not root.is_dir():
        return None
    for candidate in sorted(root.glob("epoch-*"), key=_epoch_of, reverse=True):
        problem = _problem_with(candidate)
        if problem:
            log.warning("skipping checkpoint %s: %s", candidate, problem)
            continue
        return Checkpoint(candidate, json.loads((candidate / STATE_FILE).read_text(encoding="utf-8")))
    return None


def restore_checkpoint(checkpoint: Checkpoint, model, optimizer, scheduler) -> None:
    """Load weights, optimizer, scheduler and RNG state from a complete checkpoint."""
    load_model(model, str(checkpoint.path / WEIGHTS_FILE))
    saved = torch.load(checkpoint.path / TRAINING_FILE, weights_only=True, map_location="cpu")
    optimizer.load_state_dict(saved["optimizer"])  # moves the state to the parameters' device
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    if saved.get("cuda_rng") and torch.cuda.is_available() and len(saved["cuda_rng"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])


def save_weights(model, path: Path) -> None:
    """Save just the weights (the best epoch so far) atomically."""
    with atomic_dir(path) as temp:
        save_model(model, str(temp / WEIGHTS_FILE))


def load_weights(model, path: Path) -> None:
    load_model(model, str(path / WEIGHTS_FILE))


def _problem_with(directory: Path) -> str | None:
    if not (directory / STATE_FILE).is_file():
        return "state.json missing (the write did not finish)"
    for name in (WEIGHTS_FILE, TRAINING_FILE):
        if not (directory / name).is_file():
            return f"{name} missing"
    try:
        json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        from safetensors import safe_open

        with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (a safe_open handle is not iterable)
                handle.get_slice(key)
    except Exception as exc:  # noqa: BLE001 (a damaged file can fail in many ways; any of them means "do not load")
        return f"unreadable ({type(exc).__name__}: {exc})"
    return None


def _epoch_of(path: Path) -> int:
    try:
        return int(path.name.split("-", 1)[1])
    except (IndexError, ValueError):
        return -1
