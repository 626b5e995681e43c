"""The target masked-LM objective (UDALM): a tied MLM head, seeded masking, warm-up, training."""

from __future__ import annotations

import pandas as pd
import torch

from tasks.config import TrainConfig
from tasks.models import load_classifier, load_classifier_dir, load_tokenizer
from tasks.objectives.masked_lm import (
    MaskedBatches,
    MaskedLMObjective,
    build_mlm_head,
    masked_lm_loss,
    warm_up_head,
)
from tasks.training import fine_tune
from tests.conftest import SAMPLE

LABELS = ("negative", "positive")


def test_the_mlm_head_decoder_is_tied_to_the_word_embeddings(tiny_model_dir):
    model = load_classifier(str(tiny_model_dir), LABELS)
    head = build_mlm_head(model)
    assert head.decoder.weight is model.get_input_embeddings().weight
    hidden = torch.randn(3, model.config.hidden_size)
    assert head(hidden).shape == (3, model.config.vocab_size)


def test_masked_batches_are_seeded_per_epoch_and_mask_about_the_configured_share(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    texts = tuple(pd.read_csv(SAMPLE / "kitchen.csv")["text"].head(64))
    batches = MaskedBatches(tokenizer, MaskedLMObjective(texts, probability=0.15), 48, 16, seed=0)
    first = batches.batch(1, 0)
    again = MaskedBatches(tokenizer, MaskedLMObjective(texts, probability=0.15), 48, 16, seed=0).batch(1, 0)
    assert torch.equal(first["input_ids"], again["input_ids"]) and torch.equal(first["labels"], again["labels"])
    assert not torch.equal(first["labels"], batches.batch(2, 0)["labels"])
    real = first["attention_mask"].bool()
    share = (first["labels"][real] != -100).float().mean().item()
    assert 0.05 < share < 0.3
    masked_positions = first["labels"] != -100
    assert (first["input_ids"][masked_positions] == tokenizer.mask_token_id).float().mean() > 0.5


def test_training_with_the_target_mlm_loss_lowers_it_and_saves_a_plain_classifier(tmp_path, tiny_model_dir):
    frame = pd.read_csv(SAMPLE / "kitchen.csv")
    data = pd.DataFrame({"text": frame["title"] + ". " + frame["text"], "label": frame["label"]}).iloc[:96]
    target_texts = tuple(pd.read_csv(SAMPLE / "electronics.csv")["text"].head(96))
    objective = MaskedLMObjective(target_texts, weight=1.0)
    config = TrainConfig(epochs=3, batch_size=16, learning_rate=5e-3, freeze_embeddings=False, precision="fp32",
                         early_stopping_patience=0, warmup_ratio=0.0)
    plain = fine_tune(data, data.iloc[0:0], LABELS, str(tiny_model_dir), 48, config, tmp_path / "plain",
                      tmp_path / "ck", progress=False)
    mixed = fine_tune(data, data.iloc[0:0], LABELS, str(tiny_model_dir), 48, config, tmp_path / "mixed",
                      tmp_path / "ck", progress=False, objectives=[objective])
    assert mixed.history[0]["train_loss"] > plain.history[0]["train_loss"] + 5  # the MLM loss (~ln 30k) is added
    assert mixed.history[-1]["train_loss"] < mixed.history[0]["train_loss"]
    saved = load_classifier_dir(str(mixed.model_dir))
    assert not any("mlm" in name for name, _ in saved.named_parameters())  # the head is not saved with it


def test_warming_up_the_mlm_head_lowers_its_loss_and_leaves_the_encoder_and_embeddings_alone(tiny_model_dir):
    torch.manual_seed(0)
    model = load_classifier(str(tiny_model_dir), LABELS)
    head = build_mlm_head(model)
    texts = tuple(pd.read_csv(SAMPLE / "kitchen.csv")["text"].head(64))
    batches = MaskedBatches(load_tokenizer(str(tiny_model_dir)), MaskedLMObjective(texts), 48, 16, seed=0)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    with torch.no_grad():
        start = masked_lm_loss(model, head, batches.batch(1, 0)).item()
    record = warm_up_head(model, head, batches, steps=60, learning_rate=1e-2)
    with torch.no_grad():
        after = masked_lm_loss(model, head, batches.batch(1, 0)).item()
    assert record["steps"] == 60 and record["last_loss"] < record["first_loss"]
    assert after < start - 1.0  # a batch the warm-up never saw (epoch 1, not 0) is predicted better
    assert all(torch.equal(parameter, before[name]) for name, parameter in model.named_parameters())
    assert head.decoder.weight is model.get_input_embeddings().weight  # still tied, and not moved

