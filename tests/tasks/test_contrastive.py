"""The few-shot path's contrastive tuning: texts of one label drawn together, the labels pushed apart, the encoder
saved whole as a sentence model that pools by the mean, and a single label refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tasks.config import StrategyConfig
from tasks.contrastive import contrastive_key, contrastive_tune
from tasks.errors import TrainingError
from tasks.mean_pooling import MeanPooledForSequenceClassification, mean_pool
from tasks.models import load_classifier, load_tokenizer, sentence_pooling
from tests.conftest import SAMPLE

FAST = StrategyConfig(few_shot_learning_rate=1e-3)  # the tiny random encoder needs a large step to move in one epoch


def _reviews(count: int = 24) -> tuple[list[str], list[str]]:
    kitchen = pd.read_csv(SAMPLE / "kitchen.csv")
    rows = pd.concat([kitchen[kitchen["label"] == label].head(count // 2) for label in ("negative", "positive")])
    return (rows["title"] + ". " + rows["text"]).tolist(), rows["label"].tolist()


def _label_margin(model_dir, texts: list[str], labels: list[str]) -> float:
    """Mean cosine similarity of two texts of one label minus that of two texts of different labels."""
    from transformers import AutoModel

    tokenizer, encoder = load_tokenizer(str(model_dir)), AutoModel.from_pretrained(model_dir).eval()
    with torch.inference_mode():
        batch = tokenizer(texts, truncation=True, max_length=48, padding=True, return_tensors="pt")
        vectors = torch.nn.functional.normalize(mean_pool(encoder(**batch).last_hidden_state,
                                                          batch["attention_mask"]), dim=-1).numpy()
    similarity = vectors @ vectors.T
    same = np.equal.outer(np.array(labels), np.array(labels))
    off_diagonal = ~np.eye(len(texts), dtype=bool)
    return float(similarity[same & off_diagonal].mean() - similarity[~same].mean())


def test_tuning_draws_texts_of_one_label_together_and_pushes_the_two_labels_apart(sentence_model_dir, tmp_path):
    texts, labels = _reviews()
    before = _label_margin(sentence_model_dir, texts, labels)
    tuned = contrastive_tune(texts, labels, str(sentence_model_dir), 48, FAST, 0, tmp_path / "encoder")
    after = _label_margin(tuned, texts, labels)
    assert abs(before) < 0.05  # a random encoder does not tell the labels apart
    assert after > before + 0.1  # measured: 0.002 -> 0.22


def test_the_tuned_encoder_is_a_sentence_model_that_becomes_a_mean_pooled_classifier(tiny_model_dir, tmp_path):
    texts, labels = _reviews(8)
    tuned = contrastive_tune(texts, labels, str(tiny_model_dir), 48, FAST, 0, tmp_path / "encoder")
    assert sentence_pooling(str(tiny_model_dir)) == "cls"  # a plain encoder: setfit adds mean pooling
    assert sentence_pooling(str(tuned)) == "mean"
    assert isinstance(load_classifier(str(tuned), ("negative", "positive")), MeanPooledForSequenceClassification)
    assert not list(tmp_path.glob(".encoder*"))  # no staging directory left behind


def test_the_same_texts_and_settings_give_the_same_key_and_any_change_a_new_one():
    texts, labels = _reviews(8)
    key = contrastive_key(texts, labels, "m", 48, FAST, 0)
    assert key == contrastive_key(list(texts), list(labels), "m", 48, StrategyConfig(few_shot_learning_rate=1e-3), 0)
    changed = [contrastive_key(texts[:-1], labels[:-1], "m", 48, FAST, 0),
               contrastive_key(texts, labels[::-1], "m", 48, FAST, 0),
               contrastive_key(texts, labels, "other", 48, FAST, 0),
               contrastive_key(texts, labels, "m", 64, FAST, 0),
               contrastive_key(texts, labels, "m", 48, FAST.model_copy(update={"few_shot_epochs": 2}), 0),
               contrastive_key(texts, labels, "m", 48, FAST, 1)]
    assert len({key, *changed}) == 1 + len(changed)
    assert contrastive_key(texts, labels, "m", 48, FAST.model_copy(update={"augment_copies": 5}), 0) == key


def test_labelled_texts_of_one_label_are_refused_with_what_to_do(sentence_model_dir, tmp_path):
    with pytest.raises(TrainingError, match="at least two labels.*label more target texts"):
        contrastive_tune(["good", "fine"], ["positive", "positive"], str(sentence_model_dir), 48, FAST, 0,
                         tmp_path / "encoder")
    assert not (tmp_path / "encoder").exists()
