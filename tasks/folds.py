"""Selection on few labelled target texts: out-of-fold scores instead of a 10-text validation split.

With 50 labelled target texts the validation split holds 10, and one text moves its macro-F1 by ten points. A sweep
then scores each candidate on every labelled text instead: the validation split is fold 0 (the candidate's own run
predicts it), the labelled training texts are split, stratified, into the other folds, and for each of those the
candidate is trained again without it and predicts it. The selection score is the macro-F1 of all those out-of-fold
predictions together.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from tasks.evaluation import compute_metrics

SelectOn = Literal["auto", "validation", "kfold"]
KFOLD_UP_TO = 50  # labelled target texts at which `auto` still selects by k-fold


def fold_count(validation_fraction: float) -> int:
    """How many folds the labelled target texts make: the validation split is one of them (0.2 -> 5)."""
    return max(2, round(1 / validation_fraction)) if validation_fraction > 0 else 0


def use_kfold(select_on: SelectOn, labelled: int, validation: int) -> bool:
    """Whether a sweep selects by k-fold: asked for, or `auto` with at most KFOLD_UP_TO labelled target texts
    (never without a validation split: then there is nothing to hold out)."""
    if validation == 0:
        return False
    return select_on == "kfold" or (select_on == "auto" and labelled <= KFOLD_UP_TO)


def held_out_folds(labeled: pd.DataFrame, validation: pd.DataFrame, folds: int,
                   seed: int) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(labelled training texts, held-out texts) of folds 1..folds-1: `labeled` split stratified into folds-1 parts
    (fewer when a class has fewer texts), each held out in turn, trained on the others plus the validation split.
    Empty when there is not one text per class for two parts."""
    parts = min(folds - 1, int(labeled["label"].value_counts().min())) if len(labeled) else 0
    if parts < 2:
        return []
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=parts, shuffle=True, random_state=seed)
    return [(pd.concat([labeled.iloc[kept], validation], ignore_index=True), labeled.iloc[held].reset_index(drop=True))
            for kept, held in splitter.split(labeled, labeled["label"])]


def pooled_macro_f1(parts: list[tuple[list[str], list[str]]], labels: tuple[str, ...]) -> float:
    """Macro-F1 over every fold's (true labels, predicted labels) together."""
    true = [label for fold_true, _ in parts for label in fold_true]
    predicted = [label for _, fold_predicted in parts for label in fold_predicted]
    return compute_metrics(true, predicted, labels)["macro_f1"]
