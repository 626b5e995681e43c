"""LP-FT: a new head starts as the logistic-regression probe on the frozen features, with its own learning rate;
a head the model already has is kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from tasks.batching import pad_id_of, tokenize
from tasks.config import TrainConfig
from tasks.inference import predict_probabilities
from tasks.linear_probe import fit_head, head_parameter_ids, probe_features
from tasks.models import load_classifier, load_classifier_dir, load_tokenizer, new_head
from tasks.optimizer import make_optimizer
from tasks.training import fine_tune
from tests.conftest import SAMPLE

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def texts():
    frame = pd.read_csv(SAMPLE / "kitchen.csv").iloc[:120]
    return (frame["title"] + ". " + frame["text"]).tolist(), frame["label"].tolist()


@pytest.mark.parametrize("labels", [("negative", "positive"), ("a", "b", "c")])
def test_the_fitted_head_gives_the_probes_probabilities(tiny_model_dir, texts, labels):
    words, gold = texts
    targets = [labels.index("positive" if label == "positive" else "negative") if len(labels) == 2
               else i % 3 for i, label in enumerate(gold)]
    torch.manual_seed(0)
    model, tokenizer = load_classifier(str(tiny_model_dir), labels).eval(), load_tokenizer(str(tiny_model_dir))
    sequences = tokenize(tokenizer, words, 48)
    features = probe_features(model, sequences, pad_id_of(tokenizer), CPU, "fp32")
    expected = LogisticRegression(C=1.0, max_iter=2000).fit(features, targets).predict_proba(features)
    accuracy = fit_head(model, sequences, torch.tensor(targets), torch.ones(len(words)), pad_id_of(tokenizer), CPU,
                        "fp32")
    assert accuracy == pytest.approx(np.mean(expected.argmax(1) == np.array(targets)))
    got = predict_probabilities(model, tokenizer, words, 48)
    assert np.abs(got - expected).max() < 1e-4


def test_a_fine_tune_starts_from_the_probe_and_a_random_head_does_not(tiny_model_dir, texts, tmp_path):
    words, gold = texts
    train = pd.DataFrame({"text": words, "label": gold})
    labels = ("negative", "positive")
    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = load_classifier(str(tiny_model_dir), labels)
    features = probe_features(model, tokenize(tokenizer, words, 48), pad_id_of(tokenizer), CPU, "fp32")
    probe = LogisticRegression(C=1.0, max_iter=2000).fit(features, [labels.index(label) for label in gold])

    def start_of(head_init: str) -> np.ndarray:  # a learning rate too small to move anything: where training began
        config = TrainConfig(epochs=1, learning_rate=1e-12, head_init=head_init, precision="fp32",
                             early_stopping_patience=0)
        result = fine_tune(train, train.iloc[0:0], labels, str(tiny_model_dir), 48, config, tmp_path / head_init,
                           tmp_path / "checkpoints", progress=False)
        return predict_probabilities(load_classifier_dir(str(result.model_dir)), tokenizer, words, 48)

    assert np.abs(start_of("probe") - probe.predict_proba(features)).max() < 1e-4
    assert np.abs(start_of("random") - probe.predict_proba(features)).max() > 1e-3  # 80x the tolerance above


def test_a_model_with_a_trained_head_keeps_it(classifier_dir, tiny_model_dir):
    assert new_head(str(tiny_model_dir)) and not new_head(str(classifier_dir))


def test_the_head_gets_its_own_learning_rate(tiny_model_dir):
    model = load_classifier(str(tiny_model_dir), ("negative", "positive"))
    head = head_parameter_ids(model)
    assert head == {id(model.classifier.weight), id(model.classifier.bias)}
    optimizer, _ = make_optimizer(model, TrainConfig(learning_rate=2e-5, head_learning_rate=1e-3), 10)
    rates = {id(p): group["initial_lr"] for group in optimizer.param_groups for p in group["params"]}  # warm-up: lr 0
    assert {rates[i] for i in head} == {1e-3}
    assert {rate for i, rate in rates.items() if i not in head} == {2e-5}
    plain, _ = make_optimizer(model, TrainConfig(learning_rate=2e-5), 10)
    assert {group["initial_lr"] for group in plain.param_groups} == {2e-5}
