"""Data roles: seeded stratified splits, one label set shared by every role."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.config import DataConfig, SplitConfig
from tasks.errors import DataError
from tasks.loading import load_roles
from tests.conftest import SAMPLE


def roles_for(tmp_path=None, **split):
    data = DataConfig(source=SAMPLE / "books.csv", target=SAMPLE / "kitchen.csv")
    return load_roles(data, SplitConfig(**split))


def test_one_target_file_is_split_into_labelled_unlabelled_and_test():
    roles = roles_for(target_test_size=100, target_labeled_per_class=25, validation_fraction=0.2)
    assert len(roles.target_test) == 100
    assert len(roles.target_labeled) + len(roles.target_validation) == 50
    assert len(roles.target_validation) == 10
    assert len(roles.target_unlabeled) == 400 - 100 - 50
    assert "label" not in roles.target_unlabeled.columns
    assert roles.labels == ("negative", "positive")


def test_splits_are_stratified_and_disjoint():
    roles = roles_for(target_test_size=100, target_labeled_per_class=25, validation_fraction=0.0)
    assert roles.target_labeled["label"].value_counts().to_dict() == {"negative": 25, "positive": 25}
    test_share = (roles.target_test["label"] == "positive").mean()
    kitchen = pd.read_csv(SAMPLE / "kitchen.csv")
    assert abs(test_share - (kitchen["label"] == "positive").mean()) < 0.02
    test_texts = set(roles.target_test["text"])
    assert not test_texts & set(roles.target_labeled["text"])


def test_same_seed_same_split_other_seed_other_split():
    first, again, other = roles_for(seed=1), roles_for(seed=1), roles_for(seed=2)
    assert first.target_test["text"].tolist() == again.target_test["text"].tolist()
    assert first.target_test["text"].tolist() != other.target_test["text"].tolist()


def test_source_hold_out():
    roles = roles_for(source_test_size=80)
    assert len(roles.source_test) == 80 and len(roles.source_train) == 320


def test_too_large_a_test_split_is_explained():
    with pytest.raises(DataError, match=r"kitchen.csv: split.target_test_size asks for 500 rows but the file has 400"):
        roles_for(target_test_size=500)


@pytest.mark.reliability
def test_a_label_only_in_the_target_is_an_error_naming_it(tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("title,text,label\nA,fine,positive\nB,meh,neutral\n", encoding="utf-8")
    data = DataConfig(source=SAMPLE / "books.csv", target=None, target_test=target)
    with pytest.raises(DataError, match=r"target.csv: target_test has label 'neutral' that the source lacks "
                                        r"\(source labels: negative, positive\)"):
        load_roles(data, SplitConfig())


@pytest.mark.reliability
def test_a_single_class_source_is_refused(tmp_path):
    source = tmp_path / "source.csv"
    source.write_text("title,text,label\nA,good,positive\nB,great,positive\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"source.csv: the source has only one class \(positive\)"):
        load_roles(DataConfig(source=source, target=SAMPLE / "kitchen.csv"), SplitConfig())


def test_without_a_source_the_labels_are_the_labelled_target_files_and_the_source_roles_are_empty(tmp_path):
    extra = tmp_path / "extra.csv"
    extra.write_text("title,text,label\nA,so so,neutral\nB,fine,neutral\n", encoding="utf-8")
    roles = load_roles(DataConfig(source=None, target=SAMPLE / "kitchen.csv", target_labeled=extra), SplitConfig())
    assert roles.labels == ("negative", "neutral", "positive")
    assert roles.source_train.empty and roles.source_test.empty
    assert list(roles.source_train.columns) == ["text", "label"]
    assert "neutral" in set(roles.target_labeled["label"]) and len(roles.target_test) > 0


def test_without_a_source_a_single_class_target_is_refused(tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("title,text,label\nA,good,positive\nB,great,positive\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"target.csv: the labelled target data has only one class \(positive\)"):
        load_roles(DataConfig(source=None, target=None, target_test=target), SplitConfig())


def test_separate_labelled_unlabelled_and_test_files(tmp_path):
    books = pd.read_csv(SAMPLE / "books.csv")
    kitchen = pd.read_csv(SAMPLE / "kitchen.csv")
    kitchen.iloc[:20].to_csv(tmp_path / "few.csv", index=False)
    kitchen.iloc[20:120].drop(columns=["label"]).to_parquet(tmp_path / "unlabelled.parquet")
    kitchen.iloc[120:].to_json(tmp_path / "test.jsonl", orient="records", lines=True)
    data = DataConfig(source=SAMPLE / "books.csv", target=None, target_labeled=tmp_path / "few.csv",
                      target_unlabeled=tmp_path / "unlabelled.parquet", target_test=tmp_path / "test.jsonl")
    roles = load_roles(data, SplitConfig(validation_fraction=0.0))
    assert (len(roles.source_train), len(roles.target_labeled)) == (len(books), 20)
    assert (len(roles.target_unlabeled), len(roles.target_test)) == (100, 280)


def test_copies_of_a_held_out_text_never_stay_in_training(tmp_path):
    rows = [{"title": "", "text": f"text {i}", "label": "positive" if i % 2 else "negative"} for i in range(40)]
    rows += [{"title": "", "text": f"TEXT  {i}", "label": "positive" if i % 2 else "negative"} for i in range(40)]
    path = tmp_path / "dupes.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    data = DataConfig(source=SAMPLE / "books.csv", target=path)
    roles = load_roles(data, SplitConfig(target_test_size=10, target_labeled_per_class=5, validation_fraction=0))
    held = {text.lower().replace("  ", " ") for text in roles.target_test["text"]}
    training = {text.lower().replace("  ", " ") for text in pd.concat([roles.target_labeled,
                                                                         roles.target_unlabeled])["text"]}
    assert len(roles.target_test) == 10 and not held & training
