"""Where every stage reads and writes under `output.dir`, and the readers that turn a missing file into a one-line
error naming the stage to run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.atomic import restore_known
from tasks.config import AdaptflowConfig
from tasks.errors import ConfigError, DataError

INPUT_FIELDS = ("source", "target", "target_labeled", "target_unlabeled", "target_test")
PREDICTION_SPLITS = ("target_test", "source_test")
STAGE_DIRS = ("data", "validation", "similarity", "training_set", "models", "checkpoints", "reports", "registry",
              ".stamps")


@dataclass(frozen=True)
class Layout:
    """Where every stage reads and writes, under the configured output directory."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    def role(self, name: str) -> Path:
        return self.data / f"{name}.parquet"

    @property
    def labels(self) -> Path:
        return self.data / "labels.json"

    @property
    def validation(self) -> Path:
        return self.root / "validation" / "summary.json"

    @property
    def data_docs(self) -> Path:
        return self.root / "validation" / "data_docs"

    @property
    def similarity(self) -> Path:
        return self.root / "similarity" / "report.json"

    @property
    def domains_plot(self) -> Path:
        return self.root / "similarity" / "domains.png"

    @property
    def training_set(self) -> Path:
        return self.root / "training_set" / "train_adapted.parquet"

    @property
    def prepared(self) -> Path:
        return self.root / "training_set" / "summary.json"

    def model(self, name: str) -> Path:
        return self.root / "models" / name

    def history(self, name: str) -> Path:
        return self.root / "models" / f"{name}_history.json"

    @property
    def first_round(self) -> Path:
        """Self-training's first-round model (the second round continues from it)."""
        return self.checkpoints / "self-training" / "round-1"

    def few_shot_encoder(self, key: str) -> Path:
        """The few-shot path's contrastively tuned encoder for inputs hashed to `key` (reused while they hold)."""
        return self.checkpoints / "few-shot" / key

    @property
    def pseudo_labels(self) -> Path:
        return self.root / "training_set" / "pseudo_labeled.parquet"

    @property
    def pseudo_label_summary(self) -> Path:
        return self.root / "training_set" / "pseudo_labels.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def metrics(self) -> Path:
        return self.reports / "metrics.json"

    @property
    def predictions(self) -> Path:
        """The adapted model's predictions, one row per scored text: text, label, predicted, score, split (one of
        PREDICTION_SPLITS); a CSV a person opens, its cells safe from spreadsheet formulas (tasks.atomic.write_csv)."""
        return self.reports / "predictions.csv"

    @property
    def registration(self) -> Path:
        return self.root / "registry" / "registration.json"

    def stamp(self, name: str) -> Path:
        return self.root / ".stamps" / f"{name}.json"


def layout_of(config: AdaptflowConfig) -> Layout:
    """The output layout; refuses stage directories that are symlinks leading outside `output.dir`."""
    layout = Layout(Path(config.output.dir))
    root = layout.root.resolve()
    for name in STAGE_DIRS:
        path = layout.root / name
        if path.is_symlink() or path.exists():
            target = path.resolve()
            if target != root and root not in target.parents:
                raise ConfigError(f"{path}: leads to {target}, outside output.dir {root}; outputs are written only "
                                  "under output.dir (remove the link)")
    return layout


def input_files(config: AdaptflowConfig) -> dict[str, str]:
    """The data files this run reads, by config field (their DVC md5 goes on the MLflow run and into cache keys)."""
    return {name: str(getattr(config.data, name)) for name in INPUT_FIELDS if getattr(config.data, name) is not None}


def read_json(path: Path) -> Any:
    _require(path)
    return json.loads(path.read_text(encoding="utf-8"))


def read_parquet(path: Path) -> pd.DataFrame:
    _require(path)
    return pd.read_parquet(path)


def _require(path: Path) -> None:
    """A missing stage output is a one-line error naming the stage that writes it."""
    if not path.is_file():
        from flows.stage_registry import producer_of

        stage = producer_of(path)
        fix = f"run the {stage} stage first (adaptflow stage {stage})" if stage else "run the pipeline first"
        raise DataError(f"{path}: missing; {fix}")


def read_role(layout: Layout, name: str) -> pd.DataFrame:
    """One data role as the validate stage wrote it."""
    return read_parquet(layout.role(name))


def read_labels(layout: Layout) -> tuple[str, ...]:
    return tuple(read_json(layout.labels))


def target_pool(layout: Layout) -> pd.DataFrame:
    """Target texts available for training-time use: labelled, validation and unlabelled (test if none)."""
    parts = [read_role(layout, name) for name in ("target_labeled", "target_validation", "target_unlabeled")]
    return pd.concat([part for part in parts if not part.empty] or [read_role(layout, "target_test")],
                     ignore_index=True)


def read_predictions(layout: Layout, labels: tuple[str, ...]) -> dict[str, list[str]]:
    """The adapted model's predicted labels per split, in row order, exactly as the model said them (a label such as
    `-1` comes back as itself, not as its formula-safe `'-1`)."""
    _require(layout.predictions)
    frame = pd.read_csv(layout.predictions, usecols=["split", "predicted"], dtype=str, keep_default_na=False)
    predicted = restore_known(frame["predicted"].tolist(), set(labels))
    return {split: [label for label, where in zip(predicted, frame["split"], strict=True) if where == split]
            for split in PREDICTION_SPLITS}
