"""The champion/challenger gate: both models judged on the same texts, by the margin and beyond chance."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from tasks.promotion import PairedTest, PromotionPolicy, compare, decide_promotion, macro_f1_rows

LABELS = ("negative", "positive")
POLICY = PromotionPolicy(margin=0.01, max_source_drop=0.02, alpha=0.05)


def paired(n: int, challenger_errors: int, champion_errors: int, seed: int = 0) -> PairedTest:
    """n texts, half of each label; each model wrong on its own first `errors` texts of a shuffled order."""
    rng = np.random.default_rng(seed)
    truth = [LABELS[i % 2] for i in range(n)]
    flip = {"negative": "positive", "positive": "negative"}

    def predictions(errors: int) -> list[str]:
        wrong = set(rng.permutation(n)[:errors].tolist())
        return [flip[label] if i in wrong else label for i, label in enumerate(truth)]

    return PairedTest([f"text {i}" for i in range(n)], truth, predictions(challenger_errors),
                      predictions(champion_errors))


def test_macro_f1_of_each_row_matches_scikit_learn():
    rng = np.random.default_rng(1)
    truth, predicted = rng.integers(0, 3, size=(5, 40)), rng.integers(0, 3, size=(5, 40))
    predicted[0] = 0  # a row where two labels are never predicted
    expected = [f1_score(t, p, labels=[0, 1, 2], average="macro", zero_division=0) for t, p in zip(truth, predicted)]
    assert macro_f1_rows(truth, predicted, 3) == pytest.approx(expected)


def test_the_first_model_becomes_champion():
    promote, reason = decide_promotion(None, None, LABELS, POLICY)
    assert promote and reason == "first model: no champion yet"


def test_a_really_better_challenger_is_promoted_and_the_reason_names_the_test_set_scores_and_p_value():
    test = paired(400, challenger_errors=20, champion_errors=60)
    promote, reason = decide_promotion(test, None, LABELS, POLICY)
    assert promote
    assert f"target test set ({test.fingerprint})" in reason and ", n=400)" in reason
    assert "macro-F1 0.9500 vs the champion's 0.8500, difference +0.1000" in reason
    assert "p=0.000" in reason and "95% interval +0.0" in reason


def test_a_really_worse_challenger_is_not_promoted():
    promote, reason = decide_promotion(paired(400, 60, 20), None, LABELS, POLICY)
    assert not promote and "difference -0.100" in reason and "does not beat it by the margin 0.0100" in reason


def test_an_equal_challenger_is_not_promoted():
    test = paired(400, 30, 30)
    assert compare(test, LABELS, POLICY).difference == pytest.approx(0.0)
    assert not decide_promotion(test, None, LABELS, POLICY)[0]


def test_a_gain_over_the_margin_that_one_or_two_texts_make_is_not_beyond_chance():
    # 2 texts of 100 are 0.02 > the margin, well inside what resampling the test set moves
    promote, reason = decide_promotion(paired(100, 8, 10), None, LABELS, POLICY)
    assert not promote and "difference +0.020" in reason and "not better beyond chance (p >= alpha 0.05)" in reason


def test_a_challenger_that_forgets_the_source_domain_is_not_promoted():
    target = paired(400, 20, 60)
    promote, reason = decide_promotion(target, paired(200, 30, 10, seed=2), LABELS, POLICY)
    assert not promote and "on the source hold-out" in reason and "a drop of 0.1000, more than the bound 0.0200" in reason
    promote, reason = decide_promotion(target, paired(200, 12, 10, seed=2), LABELS, POLICY)
    assert promote and "drop +0.0100 within 0.0200" in reason  # within the bound


def test_a_champion_that_cannot_be_scored_keeps_its_alias():
    promote, reason = decide_promotion(None, None, LABELS, POLICY, unscored="version 3: artifacts missing")
    assert not promote and "could not be scored on this test set (version 3: artifacts missing)" in reason


def test_the_champions_recorded_predictions_pair_only_with_exactly_the_texts_it_scored(tmp_path):
    import pandas as pd

    from tasks.atomic import write_csv
    from tasks.promotion import Evidence

    labels = ("-1", "1")  # a label a spreadsheet would read as a formula: stored quoted, read back as itself
    target = pd.DataFrame({"text": ["=good pan", "bad kettle", "fine pot"], "label": ["1", "-1", "1"],
                           "predicted": ["1", "1", "1"]})
    source = pd.DataFrame({"text": ["a book"], "label": ["-1"], "predicted": ["-1"]})
    champion = pd.DataFrame({"text": [*target["text"], *source["text"]], "predicted": ["1", "-1", "-1", "1"],
                             "split": ["target_test"] * 3 + ["source_test"]})
    write_csv(tmp_path / "predictions.csv", champion)  # as the champion's evaluate stage wrote it
    recorded = pd.read_csv(tmp_path / "predictions.csv", dtype=str, keep_default_na=False)
    assert recorded["text"][0] == "'=good pan" and recorded["predicted"][1] == "'-1"

    pairs = Evidence(labels, target, source).recorded(recorded)
    assert pairs is not None
    assert (pairs[0].texts, pairs[0].challenger, pairs[0].champion) == (
        ["=good pan", "bad kettle", "fine pot"], ["1", "1", "1"], ["1", "-1", "-1"])
    assert (pairs[1].texts, pairs[1].champion) == (["a book"], ["1"])
    no_source = Evidence(labels, target, source.iloc[:0]).recorded(recorded)
    assert no_source is not None and no_source[1] is None

    assert Evidence(labels, target.iloc[::-1], source).recorded(recorded) is None  # another order
    assert Evidence(labels, target.iloc[:2], source).recorded(recorded) is None  # other texts
    assert Evidence(labels, target, source.assign(text=["a film"])).recorded(recorded) is None  # its source differs
    assert Evidence(labels, target, source).recorded(recorded[recorded["split"] == "target_test"]) is None
    assert Evidence(labels, target, source).recorded(recorded.drop(columns="split")) is None
