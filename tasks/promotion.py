"""The champion/challenger gate: a pure decision on whether a new model version takes the `champion` alias.

Both models are scored on the same texts (the challenger's target test set, and its source hold-out when there is
one), so a change of data cannot favour either; the challenger must beat the champion's target macro-F1 by the
margin, and by more than chance on those texts (a one-sided paired bootstrap of the macro-F1 difference), without
losing more than the bound on the source domain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tasks.atomic import restore_known, safe_csv_frame


@dataclass(frozen=True)
class PromotionPolicy:
    """Promote when target macro-F1 beats the champion's by `margin` with a bootstrap p-value below `alpha`, and
    source macro-F1 drops by at most `max_source_drop`."""

    margin: float = 0.002
    max_source_drop: float = 0.02
    alpha: float = 0.05
    resamples: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class Scores:
    """One model's macro-F1 on the target test set and, where a source hold-out was scored, on that."""

    target_macro_f1: float
    source_macro_f1: float | None = None


@dataclass(frozen=True)
class PairedTest:
    """Two models' predictions on the same labelled texts."""

    texts: list[str]
    truth: list[str]
    challenger: list[str]
    champion: list[str]

    @property
    def fingerprint(self) -> str:
        """The test set as the reason names it: the md5 of its texts and labels, and its size."""
        digest = hashlib.md5("\n".join(f"{label}\t{text}" for text, label in zip(self.texts, self.truth,
                                                                                   strict=True)).encode())
        return f"md5 {digest.hexdigest()[:12]}, n={len(self.texts)}"


@dataclass(frozen=True)
class Comparison:
    """Challenger minus champion on one test set: both macro-F1 scores, the difference, its one-sided bootstrap
    p-value (the share of resamples where the challenger is not better) and 95 % interval."""

    challenger: float
    champion: float
    difference: float
    p_value: float
    low: float
    high: float

    def describe(self) -> str:
        return (f"macro-F1 {self.challenger:.4f} vs the champion's {self.champion:.4f}, difference "
                f"{self.difference:+.4f} (95% interval {self.low:+.4f}..{self.high:+.4f}, p={self.p_value:.3f})")


def macro_f1_rows(truth: np.ndarray, predicted: np.ndarray, n_labels: int) -> np.ndarray:
    """Macro-F1 of each row of (resamples, n) label-id arrays; a label absent from a row's truth and predictions
    counts as F1 0, as scikit-learn does with the full label set."""
    scores = np.zeros(truth.shape[0])
    for label in range(n_labels):
        is_true, is_predicted = truth == label, predicted == label
        hits = (is_true & is_predicted).sum(axis=1)
        denominator = is_true.sum(axis=1) + is_predicted.sum(axis=1)
        scores += np.divide(2 * hits, denominator, out=np.zeros(len(hits)), where=denominator > 0)
    return scores / n_labels


def compare(test: PairedTest, labels: tuple[str, ...], policy: PromotionPolicy) -> Comparison:
    """The paired bootstrap of macro-F1(challenger) - macro-F1(champion) over the texts of `test`."""
    ids = {label: index for index, label in enumerate(labels)}
    truth, ours, theirs = (np.array([ids.get(label, -1) for label in column])
                           for column in (test.truth, test.challenger, test.champion))
    challenger, champion = (float(macro_f1_rows(truth[None], side[None], len(labels))[0]) for side in (ours, theirs))
    rows = np.random.default_rng(policy.seed).integers(0, len(truth), size=(policy.resamples, len(truth)))
    differences = (macro_f1_rows(truth[rows], ours[rows], len(labels))
                   - macro_f1_rows(truth[rows], theirs[rows], len(labels)))
    low, high = np.quantile(differences, [0.025, 0.975])
    return Comparison(challenger, champion, challenger - champion, float((differences <= 0).mean()), float(low),
                      float(high))


def decide_promotion(target: PairedTest | None, source: PairedTest | None, labels: tuple[str, ...],
                     policy: PromotionPolicy, unscored: str | None = None) -> tuple[bool, str]:
    """(promote, reason). `target` is None when there is no champion yet (the first model becomes champion), and
    `unscored` says why, when a champion exists but could not be scored on these texts (then nothing moves)."""
    if unscored is not None:
        return False, f"the champion could not be scored on this test set ({unscored}); champion unchanged"
    if target is None:
        return True, "first model: no champion yet"
    result = compare(target, labels, policy)
    where = f"target test set ({target.fingerprint}): {result.describe()}"
    if result.difference < policy.margin:
        return False, f"{where}; does not beat it by the margin {policy.margin:.4f}"
    if result.p_value >= policy.alpha:
        return False, f"{where}; not better beyond chance (p >= alpha {policy.alpha:g})"
    if source is not None and source.texts:
        held_out = compare(source, labels, policy)
        drop = 0.0 - held_out.difference  # (not -difference: no "-0.0000")
        if drop > policy.max_source_drop:
            return False, (f"{where}; but on the source hold-out ({source.fingerprint}) {held_out.describe()}: "
                           f"a drop of {drop:.4f}, more than the bound {policy.max_source_drop:.4f}")
        where += f"; source hold-out ({source.fingerprint}) drop {drop:+.4f} within {policy.max_source_drop:.4f}"
    return True, f"{where}; beats it by at least {policy.margin:.4f} with p < {policy.alpha:g}"


@dataclass(frozen=True)
class Evidence:
    """What the gate scores the champion on: the challenger's labelled target test texts with its predictions
    (columns text, label, predicted), its source hold-out likewise (empty when there is none), the label set."""

    labels: tuple[str, ...]
    target: pd.DataFrame
    source: pd.DataFrame

    def paired(self, champion: Any) -> tuple[PairedTest, PairedTest | None]:
        """Both test sets with the champion's predictions on the same texts beside the challenger's."""
        def pair(frame: pd.DataFrame) -> PairedTest:
            return _beside(frame, champion.predict(pd.DataFrame({"text": frame["text"].tolist()}))["label"]
                           .astype(str).tolist())

        return pair(self.target), pair(self.source) if len(self.source) else None

    def recorded(self, predictions: pd.DataFrame) -> tuple[PairedTest, PairedTest | None] | None:
        """Both test sets with the champion's predictions as its own evaluation recorded them (its
        `predictions.csv`: columns split, text, predicted, as `tasks.atomic.write_csv` wrote them, read as strings),
        when it scored exactly these texts in this order; None when it did not: other texts, another order, a split
        missing, a file without those columns. The same model on the same texts says the same: the gate then has
        no reason to load it and label them again."""
        if not {"split", "text", "predicted"} <= set(predictions.columns):
            return None

        def pair(frame: pd.DataFrame, split: str) -> PairedTest | None:
            rows = predictions[predictions["split"] == split]
            if rows["text"].tolist() != safe_csv_frame(frame[["text"]])["text"].tolist():
                return None
            return _beside(frame, restore_known(rows["predicted"].tolist(), set(self.labels)))

        target = pair(self.target, "target_test")
        source = pair(self.source, "source_test") if len(self.source) else None
        if target is None or (len(self.source) and source is None):
            return None
        return target, source


def _beside(frame: pd.DataFrame, champion_labels: list[str]) -> PairedTest:
    """One test set (columns text, label, predicted: the challenger's) with the champion's labels beside it."""
    return PairedTest(frame["text"].tolist(), frame["label"].astype(str).tolist(),
                      frame["predicted"].astype(str).tolist(), champion_labels)
