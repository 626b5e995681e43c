"""Pseudo-labels: only confident predictions, equal per class, most confident first."""

from __future__ import annotations

import numpy as np

from tasks.pseudo_labeling import select_confident

LABELS = ("negative", "positive")


def test_only_confident_predictions_become_pseudo_labels_equal_per_class_most_confident_first():
    texts = ["a", "b", "c", "d", "e", "f"]
    probabilities = np.array([[0.95, 0.05], [0.99, 0.01], [0.6, 0.4], [0.02, 0.98], [0.3, 0.7], [0.97, 0.03]])
    chosen = select_confident(texts, probabilities, LABELS, threshold=0.9, max_per_class=10)
    # three confident negatives but one confident positive: one of each, the most confident negative first
    assert chosen[["text", "label"]].values.tolist() == [["b", "negative"], ["d", "positive"]]
    assert chosen["confidence"].min() >= 0.9
    capped = select_confident(texts * 2, np.vstack([probabilities] * 2), LABELS, threshold=0.9, max_per_class=1)
    assert capped["label"].tolist() == ["negative", "positive"]


def test_no_pseudo_label_when_a_class_has_no_confident_text():
    chosen = select_confident(["a", "b"], np.array([[0.99, 0.01], [0.95, 0.05]]), LABELS, 0.9, 10)
    assert chosen.empty and list(chosen.columns) == ["text", "label", "confidence"]

