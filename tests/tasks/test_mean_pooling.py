"""A classification head on the mean of the token states: chosen for sentence encoders trained with mean pooling,
blind to padding, saved and loaded as any transformers classifier, and refused loudly where it is not registered."""

from __future__ import annotations

import subprocess
import sys

import torch
from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

from tasks.mean_pooling import MODEL_TYPE, MeanPooledForSequenceClassification, mean_pool
from tasks.models import load_classifier, load_tokenizer, sentence_pooling

LABELS = ("negative", "positive")


def test_auto_pools_as_the_sentence_model_was_trained_and_a_plain_encoder_keeps_its_cls_head(
        sentence_model_dir, tiny_model_dir):
    assert sentence_pooling(str(sentence_model_dir)) == "mean"
    assert sentence_pooling(str(tiny_model_dir)) == "cls"
    assert isinstance(load_classifier(str(sentence_model_dir), LABELS, "auto"), MeanPooledForSequenceClassification)
    assert isinstance(load_classifier(str(tiny_model_dir), LABELS, "auto"), BertForSequenceClassification)
    assert isinstance(load_classifier(str(sentence_model_dir), LABELS, "cls"), BertForSequenceClassification)
    assert isinstance(load_classifier(str(tiny_model_dir), LABELS, "mean"), MeanPooledForSequenceClassification)


def test_the_default_model_pools_by_the_mean():
    from tasks.config import DEFAULT_MODEL
    from tasks.models import resolve_model_path

    assert sentence_pooling(resolve_model_path(DEFAULT_MODEL)) == "mean"


def test_the_encoder_keeps_its_pretrained_weights_and_drops_the_unread_cls_pooler(sentence_model_dir):
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(sentence_model_dir)
    model = load_classifier(str(sentence_model_dir), LABELS, "mean")
    assert model.encoder.pooler is None
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, encoder.state_dict()[name]), name


def test_padding_does_not_change_a_texts_logits(mean_classifier_dir):
    model = AutoModelForSequenceClassification.from_pretrained(mean_classifier_dir).eval()
    ids = load_tokenizer(str(mean_classifier_dir))("the kettle boils fast")["input_ids"]
    alone = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long)).logits
    padded_ids = torch.tensor([ids + [0] * 9])
    mask = torch.tensor([[1] * len(ids) + [0] * 9])
    padded = model(input_ids=padded_ids, attention_mask=mask).logits
    assert torch.allclose(alone, padded, atol=1e-5)


def test_the_mean_excludes_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert torch.equal(mean_pool(hidden, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))


def test_a_saved_classifier_loads_back_through_the_auto_classes_with_the_same_logits(mean_classifier_dir, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(mean_classifier_dir).eval()
    model.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(again) is MeanPooledForSequenceClassification and again.config.model_type == MODEL_TYPE
    assert again.config.id2label == {0: "negative", 1: "positive"}
    ids = torch.tensor([[101, 2307, 102]])
    assert torch.equal(model(input_ids=ids).logits, again(input_ids=ids).logits)


def test_a_setting_changed_on_the_live_encoder_is_saved_with_the_classifier(mean_classifier_dir, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(mean_classifier_dir)
    assert model.encoder.config.hidden_dropout_prob != 0.25
    model.encoder.config.hidden_dropout_prob = 0.25
    model.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert again.encoder.config.hidden_dropout_prob == 0.25 and again.config.encoder["hidden_dropout_prob"] == 0.25


def test_transformers_without_adaptflow_refuses_the_model_instead_of_pooling_differently(mean_classifier_dir):
    script = ("from transformers import AutoModelForSequenceClassification\n"
              f"AutoModelForSequenceClassification.from_pretrained({str(mean_classifier_dir)!r})\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert MODEL_TYPE in done.stderr


def test_a_model_saved_by_sentence_transformers_6_is_read_as_mean_pooled(sentence_model_dir, tmp_path):
    import json
    import shutil

    shutil.copytree(sentence_model_dir, tmp_path / "st6", dirs_exist_ok=True)
    (tmp_path / "st6" / "1_Pooling" / "config.json").write_text(json.dumps(
        {"embedding_dimension": 32, "pooling_mode": "mean", "include_prompt": True}))
    assert sentence_pooling(str(tmp_path / "st6")) == "mean"
    (tmp_path / "st6" / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "cls"}))
    assert sentence_pooling(str(tmp_path / "st6")) == "cls"
