"""Pseudo-labelling (self-training): a first model labels the unlabelled target texts, the confident ones join the
training set of a second round."""

from __future__ import annotations

import numpy as np
import pandas as pd


def select_confident(texts: list[str], probabilities: np.ndarray, labels: tuple[str, ...], threshold: float,
                     max_per_class: int) -> pd.DataFrame:
    """Rows `text`, `label`, `confidence` for the texts predicted with probability >= `threshold`.

    Per class the most confident come first and at most `max_per_class` are kept; every class keeps the same number
    (that of the class with fewest confident texts), so the first model's bias towards a class is not amplified.
    A class with no confident text means no pseudo-label at all.
    """
    if len(texts) != len(probabilities):
        raise ValueError(f"{len(texts)} texts but {len(probabilities)} rows of probabilities")
    columns = ["text", "label", "confidence"]
    if not texts:
        return pd.DataFrame(columns=columns)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    per_class = []
    for index in range(len(labels)):
        chosen = np.flatnonzero((predicted == index) & (confidence >= threshold))
        per_class.append(chosen[np.argsort(-confidence[chosen], kind="stable")])
    keep = min(max_per_class, *(len(chosen) for chosen in per_class))
    rows = [(texts[i], labels[index], float(confidence[i]))
            for index, chosen in enumerate(per_class) for i in chosen[:keep]]
    return pd.DataFrame(rows, columns=columns)
