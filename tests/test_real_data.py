"""On the real Amazon reviews (../shared): loading, the 1,600 / 400 split, and the real MiniLM learning."""

from __future__ import annotations

import pytest

from tasks.config import DataConfig, SplitConfig, TrainConfig
from tasks.evaluation import compute_metrics
from tasks.inference import predict
from tasks.loading import load_roles
from tasks.models import load_classifier_dir, load_tokenizer
from tasks.training import fine_tune

pytestmark = pytest.mark.real_data


def test_seeded_stratified_1600_400_split(real_data_dir):
    data = DataConfig(source=real_data_dir / "books.csv", target=real_data_dir / "kitchen.csv")
    roles = load_roles(data, SplitConfig(source_test_size=400, target_test_size=400, target_labeled_per_class=25,
                                         validation_fraction=0.0))
    assert (len(roles.source_test), len(roles.target_test)) == (400, 400)
    assert 1590 <= len(roles.source_train) <= 1600  # the other copies of a held-out duplicate are dropped
    assert all(195 <= count <= 205 for count in roles.target_test["label"].value_counts())
    assert len(roles.target_labeled) == 50 and 1540 <= len(roles.target_unlabeled) <= 1550
    assert not set(roles.source_test["text"]) & set(roles.source_train["text"])


@pytest.mark.slow
def test_the_real_minilm_learns_sentiment_from_a_few_real_reviews(real_data_dir, tmp_path):
    data = DataConfig(source=real_data_dir / "electronics.csv", target=real_data_dir / "kitchen.csv")
    roles = load_roles(data, SplitConfig(source_test_size=0, target_test_size=100, target_labeled_per_class=0))
    train = roles.source_train.sample(n=160, random_state=0)
    result = fine_tune(train, roles.target_validation, roles.labels, "all-MiniLM-L6-v2", 64,
                       TrainConfig(epochs=3, batch_size=16, learning_rate=1e-4), tmp_path / "model", tmp_path / "ck",
                       progress=False)
    model_dir = str(result.model_dir)
    predicted = predict(load_classifier_dir(model_dir), load_tokenizer(model_dir),
                        roles.target_test["text"].tolist(), 64)
    metrics = compute_metrics(roles.target_test["label"].tolist(), predicted.labels, roles.labels)
    assert metrics["accuracy"] >= 0.7, metrics


def test_kitchen_against_itself_leaks_every_text(real_data_dir):
    from tasks.config import ValidationConfig
    from tasks.data_validation import validate_roles

    kitchen = real_data_dir / "kitchen.csv"
    roles = load_roles(DataConfig(source=kitchen, target=None, target_test=kitchen), SplitConfig())
    summary, _ = validate_roles(roles, ValidationConfig(), {"target_test": str(kitchen)})
    leakage = next(f for f in summary["failures"] if f["check"] == "leakage")
    assert leakage["severity"] == "error"
    assert leakage["unexpected_count"] == summary["leaked"] == 2000


def test_books_to_kitchen_passes_with_duplicate_warnings_and_truncation_reported(real_data_dir):
    from tasks.config import ValidationConfig
    from tasks.data_validation import role_files, validate_roles
    from tasks.models import load_tokenizer

    data = DataConfig(source=real_data_dir / "books.csv", target=real_data_dir / "kitchen.csv")
    roles = load_roles(data, SplitConfig(target_test_size=400, target_labeled_per_class=25))
    summary, _ = validate_roles(roles, ValidationConfig(), role_files(data), load_tokenizer("all-MiniLM-L6-v2"), 256)
    assert summary["status"] == "passed_with_warnings", summary["failures"]
    assert {f["check"] for f in summary["failures"]} == {"duplicates"}
    assert 0.0 < summary["truncated_share"]["source_train"] < 1.0
    assert summary["leaked"] == 0
    print(f"validated {sum(summary['rows'].values())} real reviews in {summary['seconds']} s")


@pytest.mark.slow
def test_the_calibrated_thresholds_split_the_real_domains_as_expected(real_data_dir, tmp_path, capsys):
    import json

    from benchmarks.calibrate_similarity import main

    assert main(["--data", str(real_data_dir), "--json", str(tmp_path / "matrix.json")]) == 0
    rows = {(row["source"], row["target"]): row["similar"] for row in json.loads((tmp_path / "matrix.json").read_text())}
    assert rows == {("electronics", "kitchen"): True, ("kitchen", "electronics"): True,
                    ("books", "electronics"): False, ("electronics", "books"): False,
                    ("books", "kitchen"): False, ("kitchen", "books"): False}
    assert "| electronics | kitchen |" in capsys.readouterr().out
