"""Which fine-tune a run is, and what a finished one leaves beside its model.

`run_key` hashes everything that decides the trained weights; the record file written into the saved model's
directory holds that key and the run's history, so a re-run of the same job reuses the model instead of training again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.atomic import atomic_dir
from tasks.config import TrainConfig
from tasks.objectives import Objective

RECORD_FILE = "adaptflow-training.json"  # beside the saved model: which job produced it, and its history


@dataclass(frozen=True)
class TrainResult:
    """What a fine-tune produced: the saved model dir and the per-epoch history."""

    model_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int
    stopped_early: bool
    resumed_from_epoch: int | None = None
    n_train: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def completed_run(output_dir: Path, key: str) -> TrainResult | None:
    """The finished fine-tune saved in `output_dir` when it was this exact job (same run key), else None.

    A re-run after a crash then skips work that already completed: the first self-training round, say, when the
    second was interrupted."""
    try:
        record = json.loads((output_dir / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("run_key") != key:
        return None
    return TrainResult(output_dir, record["history"], record["best_epoch"], record["stopped_early"], None,
                       record["n_train"], {**record.get("extra", {}), "reused": True})


def run_key(train: pd.DataFrame, validation: pd.DataFrame, labels: tuple[str, ...], model_name: str,
            max_length: int, config: TrainConfig, objectives: Sequence[Objective] = ()) -> str:
    """A short hash of everything that decides the trained weights: checkpoints are only reused for the same job."""
    digest = hashlib.sha256()
    settings = config.model_dump(mode="json", exclude={"resume", "keep_checkpoints", "device"} |
                                 ({"processes"} if config.processes == 1 else set()))  # keys from before it stay
    # None without objectives: the keys of those runs stay what they were before objectives existed
    auxiliary = [objective.fingerprint() for objective in objectives] or None
    digest.update(json.dumps([model_name, max_length, list(labels), settings, auxiliary], sort_keys=True).encode())
    for frame in (train, validation):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def save_trained_model(model, tokenizer, output_dir: Path, record: dict[str, Any]) -> None:
    """Save the model, its tokenizer and the run `record` into `output_dir`, whole or not at all."""
    with atomic_dir(output_dir) as temp:
        model.to("cpu").save_pretrained(temp)
        tokenizer.save_pretrained(temp)
        (temp / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")
