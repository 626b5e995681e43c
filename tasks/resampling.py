"""Resampling by weights: class balancing and importance weighting of source rows by p(target|x) / p(source|x)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


def class_balance_weights(labels: pd.Series) -> np.ndarray:
    """Weights that give every class the same total weight (mean 1)."""
    counts = labels.map(labels.value_counts()).to_numpy(dtype=float)
    weights = 1.0 / counts
    return weights / weights.mean()


def importance_weights(source: np.ndarray, target: np.ndarray, clip: tuple[float, float] = (0.1, 10.0),
                       seed: int = 0) -> np.ndarray:
    """Odds p(target|x)/p(source|x) of a logistic domain classifier for each source row, clipped, mean 1.

    The odds are corrected for the two sample sizes, so a source row that looks like the target gets weight > 1.
    """
    features = np.vstack([source, target])
    domains = np.r_[np.zeros(len(source)), np.ones(len(target))]
    classifier = LogisticRegression(max_iter=1000, random_state=seed).fit(features, domains)
    p_target = classifier.predict_proba(source)[:, 1]
    odds = p_target / np.clip(1.0 - p_target, 1e-6, None) * (len(source) / len(target))
    weights = np.clip(odds, *clip)
    return weights / weights.mean()
