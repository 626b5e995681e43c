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
    assert (len(roles.source_train), len(roles.source_test), len(roles.target_test)) == (1600, 400, 400)
    assert roles.target_test["label"].value_counts().to_dict() == {"negative": 200, "positive": 200}
    assert len(roles.target_labeled) == 50 and len(roles.target_unlabeled) == 1550


@pytest.mark.slow
def test_the_real_minilm_learns_sentiment_from_a_few_real_reviews(real_data_dir, tmp_path):
    data = DataConfig(source=real_data_dir / "electronics.csv", target=real_data_dir / "kitchen.csv")
    roles = load_roles(data, SplitConfig(source_test_size=0, target_test_size=100, target_labeled_per_class=0))
    train = roles.source_train.sample(n=320, random_state=0)
    result = fine_tune(train, roles.target_validation, roles.labels, "all-MiniLM-L6-v2", 64,
                       TrainConfig(epochs=3, batch_size=16, learning_rate=1e-4), tmp_path / "model", tmp_path / "ck",
                       progress=False)
    model_dir = str(result.model_dir)
    predicted = predict(load_classifier_dir(model_dir), load_tokenizer(model_dir),
                        roles.target_test["text"].tolist(), 64)
    metrics = compute_metrics(roles.target_test["label"].tolist(), predicted.labels, roles.labels)
    assert metrics["accuracy"] >= 0.7, metrics
