"""Self-training: the first-round model labels the unlabelled target texts, and a second round learns from the
confident ones. Takes the fine-tune function it uses, so the engine stays the caller's choice."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tasks.atomic import atomic_dir
from tasks.config import AdaptflowConfig
from tasks.devices import placement
from tasks.inference import predict_probabilities
from tasks.pseudo_labeling import select_confident
from tasks.results import Branch, PseudoLabels
from tasks.training import TrainResult

FineTune = Callable[..., TrainResult]


def label_unlabeled(config: AdaptflowConfig, teacher_dir: Path, unlabeled: pd.DataFrame,
                    labels: tuple[str, ...]) -> tuple[pd.DataFrame, PseudoLabels]:
    """The teacher's confident, class-balanced pseudo-labels of `unlabeled` and their counts."""
    from tasks.models import load_classifier_dir, load_tokenizer

    strategy = config.strategy
    device, precision = placement(config.train)
    probabilities = predict_probabilities(load_classifier_dir(str(teacher_dir)).to(device),
                                          load_tokenizer(str(teacher_dir)), unlabeled["text"].tolist(),
                                          config.model.max_length, config.evaluation.batch_size, precision)
    pseudo = select_confident(unlabeled["text"].tolist(), probabilities, labels, strategy.pseudo_label_threshold,
                              strategy.pseudo_label_max_per_class)
    counts = PseudoLabels(len(unlabeled), len(pseudo), {label: int((pseudo["label"] == label).sum())
                                                        for label in labels}, strategy.pseudo_label_threshold)
    return pseudo, counts


def second_round_set(config: AdaptflowConfig, prepared: pd.DataFrame, pseudo: pd.DataFrame) -> pd.DataFrame:
    """The prepared set (its weights kept) plus the pseudo-labels at weight 1; without `pseudo_label_with_source`,
    the labelled and pseudo-labelled target texts alone, each counting once."""
    if config.strategy.pseudo_label_with_source:
        kept = prepared.assign(weight=prepared["weight"] if "weight" in prepared.columns else 1.0)
    else:
        kept = (prepared[prepared["domain"] == "target"] if "domain" in prepared.columns
                else prepared.iloc[0:0]).assign(weight=1.0)
    return pd.concat([kept[["text", "label", "weight"]], pseudo[["text", "label"]].assign(weight=1.0)],
                     ignore_index=True)


def train_second_round(fine_tune: FineTune, config: AdaptflowConfig, teacher_dir: Path, train: pd.DataFrame,
                       validation: pd.DataFrame, labels: tuple[str, ...], output_dir: Path, checkpoints: Path,
                       progress: bool = True, objectives: tuple = (),
                       on_progress: Callable[[float], None] | None = None) -> TrainResult:
    """Round 2 on `train`, from the teacher (`pseudo_label_student: continue`) or the foundation model (`fresh`),
    for `pseudo_label_epochs`."""
    strategy = config.strategy
    start = str(teacher_dir) if strategy.pseudo_label_student == "continue" else config.model.name_or_path
    settings = config.train.model_copy(update={"epochs": strategy.pseudo_label_epochs})
    return fine_tune(train, validation, labels, start, config.model.max_length, settings, output_dir, checkpoints,
                     progress=progress, objectives=objectives, on_progress=on_progress)


def adopt_teacher(teacher_dir: Path, output_dir: Path) -> None:
    """No pseudo-label to learn from: the first-round model is the model."""
    with atomic_dir(output_dir) as temp:
        shutil.copytree(teacher_dir, temp, dirs_exist_ok=True)


def describe(counts: PseudoLabels, config: AdaptflowConfig, branch: Branch) -> str:
    """The strategy line of the run report (the few-shot branch's prepared set has no source row)."""
    strategy = config.strategy
    student = "continues from the first model" if strategy.pseudo_label_student == "continue" \
        else "trains a fresh model"
    source = "the source and " if strategy.pseudo_label_with_source and branch != "few_shot" else ""
    return (f"pseudo_labeling ({counts.selected} of {counts.candidates} unlabelled target texts at confidence >= "
            f"{strategy.pseudo_label_threshold:g}; second round {student} on {source}the target texts)")


def empty_pseudo_labels() -> pd.DataFrame:
    return pd.DataFrame(columns=["text", "label", "confidence"])
