"""Out-of-fold selection: which sweeps use it, how the labelled target texts are split, how the score pools."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.folds import fold_count, held_out_folds, pooled_macro_f1, use_kfold


def labelled(per_class: int, prefix: str = "t") -> pd.DataFrame:
    return pd.DataFrame({"text": [f"{prefix}{i}" for i in range(2 * per_class)],
                         "label": ["negative", "positive"] * per_class})


def test_the_validation_split_is_one_fold_of_as_many_as_its_fraction_makes():
    assert fold_count(0.2) == 5 and fold_count(0.25) == 4 and fold_count(0.5) == 2 and fold_count(0.9) == 2
    assert fold_count(0.0) == 0


@pytest.mark.parametrize(("select_on", "texts", "validation", "expected"), [
    ("auto", 50, 10, True), ("auto", 51, 10, False), ("kfold", 400, 80, True), ("validation", 20, 4, False),
    ("auto", 20, 0, False), ("kfold", 20, 0, False)])
def test_auto_selects_by_k_fold_up_to_50_labelled_texts_and_never_without_a_validation_split(
        select_on, texts, validation, expected):
    assert use_kfold(select_on, texts, validation) is expected


def test_each_labelled_training_text_is_held_out_once_and_trained_on_in_every_other_fold():
    train, validation = labelled(20), labelled(5, prefix="v")
    folds = held_out_folds(train, validation, 5, seed=0)
    assert len(folds) == 4
    held = [text for _, out in folds for text in out["text"]]
    assert sorted(held) == sorted(train["text"])
    for kept, out in folds:
        assert set(kept["text"]) == (set(train["text"]) - set(out["text"])) | set(validation["text"])
        assert out["label"].value_counts().to_dict() == {"negative": 5, "positive": 5}  # stratified


def test_fewer_folds_when_a_class_has_fewer_texts_and_none_below_two():
    train = pd.DataFrame({"text": list("abcdefg"), "label": ["negative"] * 4 + ["positive"] * 3})
    assert len(held_out_folds(train, labelled(1), 5, seed=0)) == 3
    assert held_out_folds(train.iloc[[0, 1, 4]], labelled(1), 5, seed=0) == []


def test_the_score_is_one_macro_f1_over_every_folds_predictions_together():
    labels = ("negative", "positive")
    parts = [(["negative", "positive"], ["negative", "positive"]),  # this fold alone: 1.0
             (["positive", "positive", "negative"], ["positive", "negative", "negative"])]  # alone: 2/3
    # pooled: negative P 2/3 R 1, positive P 1 R 2/3 -> 0.8 each (the mean of the folds' scores would be 0.833)
    assert pooled_macro_f1(parts, labels) == pytest.approx(0.8)
