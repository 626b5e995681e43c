"""Resampling by weights: class balancing and importance weighting of source rows by p(target|x) / p(source|x)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def class_balance_weights(labels: pd.Series) -> np.ndarray:
    """Weights that give every class the same total weight (mean 1)."""
    counts = labels.map(labels.value_counts()).to_numpy(dtype=float)
    weights = 1.0 / counts
    return weights / weights.mean()


def importance_weights(source: np.ndarray, target: np.ndarray, clip: tuple[float, float] = (0.1, 10.0),
                       seed: int = 0) -> np.ndarray:
    """Odds p(target|x)/p(source|x) of a logistic domain classifier for each source row, relative to the median
    source row, clipped, mean 1.

    The odds are corrected for the two sample sizes, so a source row that looks more like the target than the
    typical source row gets weight > 1. They are taken relative to the median and clipped to `clip` *before* the
    mean is set to 1: when the domains are (nearly) separable, every raw odds is tiny and differs by orders of
    magnitude, and clipping raw odds would let a handful of rows carry most of the weight.
    """
    features = np.vstack([source, target])
    domains = np.r_[np.zeros(len(source)), np.ones(len(target))]
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(max_iter=1000, random_state=seed).fit(features, domains)
    log_odds = classifier.decision_function(source) + np.log(len(source) / len(target))
    relative = np.exp(np.clip(log_odds - np.median(log_odds), np.log(clip[0]), np.log(clip[1])))
    return relative / relative.mean()


def effective_sample_share(weights: np.ndarray) -> float:
    """Kish's effective sample size of weighted rows, (sum w)^2 / sum w^2, as a share of the rows: 1 for equal
    weights; 0.4 means the weighted rows carry as much information as 40% of them unweighted."""
    weights = np.asarray(weights, dtype=float)
    return float(weights.sum() ** 2 / (weights**2).sum() / len(weights)) if len(weights) else 0.0
