"""Domain-adversarial training (DANN): gradient reversal, its ramp, the domain classifier, training."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from tasks.config import TrainConfig
from tasks.models import load_classifier, load_classifier_dir, load_tokenizer
from tasks.objectives.domain_adversarial import (
    AdversarialObjective,
    DomainClassifier,
    FeatureTap,
    TargetBatches,
    domain_adversarial_loss,
    reversal_scale,
    reverse_gradient,
)
from tasks.training import fine_tune
from tests.conftest import SAMPLE

LABELS = ("negative", "positive")


BOOKS = ["The novel's author writes well", "a gripping novel, the author at her best", "the plot of this novel",
         "the author's second novel is dull", "I read the novel twice", "the novel has a slow plot"]


KITCHEN = ["the blender's motor is loud", "this blender crushes ice", "a blender with a weak motor",
           "the kettle and the blender broke", "the blender's lid leaks", "the motor of the kettle"]


def _encoder_and_head_gradients(model, head, tokenizer, scale: float, reverse: bool = True):
    tap = FeatureTap(model)
    model.zero_grad()
    head.zero_grad()
    model(**TargetBatches(tokenizer, tuple(BOOKS), 32, 6, seed=0).batch(0, 0))  # the task forward fills the tap
    target = TargetBatches(tokenizer, tuple(KITCHEN), 32, 6, seed=0).batch(0, 0)
    if reverse:
        loss = domain_adversarial_loss(model, head, tap, torch.zeros(6), target, scale)
    else:  # the plain domain-classification loss, no reversal
        source = tap.take()
        model.base_model(**target)
        features = torch.cat([source, tap.take()])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(features), torch.cat([torch.zeros(6),
                                                                                              torch.ones(6)]))
    loss.backward()
    tap.close()
    encoder = torch.cat([p.grad.flatten() for n, p in model.base_model.named_parameters() if p.grad is not None])
    return encoder, torch.cat([p.grad.flatten() for p in head.parameters()])


def _domain_data():
    frame = pd.read_csv(SAMPLE / "kitchen.csv")
    data = pd.DataFrame({"text": frame["title"] + ". " + frame["text"], "label": frame["label"]}).iloc[:64]
    target = tuple(pd.read_csv(SAMPLE / "electronics.csv")["text"].head(64))
    return data, target


def test_the_gradient_reversal_passes_features_through_and_turns_their_gradient_around():
    features = torch.randn(4, 8, requires_grad=True)
    reversed_ = reverse_gradient(features, 0.3)
    assert torch.equal(reversed_, features)
    (reversed_ * 2).sum().backward()
    assert torch.allclose(features.grad, torch.full((4, 8), -0.6))


def test_the_reversal_scale_ramps_up_from_zero_to_the_configured_weight():
    scales = [reversal_scale(p, 0.5) for p in (0.0, 0.1, 0.5, 1.0)]
    assert scales[0] == 0.0 and scales == sorted(scales)
    assert 0.5 * 0.99 < scales[-1] <= 0.5 and reversal_scale(2.0, 0.5) == scales[-1]


def test_the_domain_classifier_learns_to_tell_two_domains_apart():
    torch.manual_seed(0)
    features = torch.cat([torch.randn(64, 16) + 1.0, torch.randn(64, 16) - 1.0])
    domains = torch.cat([torch.zeros(64), torch.ones(64)])
    head = DomainClassifier(16)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(50):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(features), domains)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    head.eval()
    assert ((head(features) > 0).float() == domains).float().mean() > 0.95


def test_the_encoder_gets_the_domain_gradient_turned_around_and_scaled_while_the_domain_classifier_gets_it_whole(
        tiny_model_dir):
    torch.manual_seed(0)
    model, tokenizer = load_classifier(str(tiny_model_dir), LABELS), load_tokenizer(str(tiny_model_dir))
    head = DomainClassifier(model.config.hidden_size).eval()
    plain_encoder, plain_head = _encoder_and_head_gradients(model, head, tokenizer, 1.0, reverse=False)
    full_encoder, full_head = _encoder_and_head_gradients(model, head, tokenizer, 1.0)
    half_encoder, half_head = _encoder_and_head_gradients(model, head, tokenizer, 0.5)
    assert plain_encoder.abs().sum() > 0
    assert torch.allclose(full_encoder, -plain_encoder, atol=1e-9)  # the encoder is pushed to confuse the domains
    assert torch.allclose(half_encoder, 0.5 * full_encoder, atol=1e-9)
    assert torch.allclose(full_head, plain_head) and torch.allclose(half_head, plain_head)  # the head learns as usual
    tap = FeatureTap(model)
    with pytest.raises(RuntimeError, match="has not run"):
        tap.take()


def test_training_with_the_domain_adversarial_loss_adds_it_and_saves_a_plain_classifier(tmp_path, tiny_model_dir):
    data, target = _domain_data()
    config = TrainConfig(epochs=2, batch_size=16, learning_rate=5e-3, freeze_embeddings=False, precision="fp32",
                         early_stopping_patience=0, warmup_ratio=0.0)
    plain = fine_tune(data, data.iloc[0:0], LABELS, str(tiny_model_dir), 48, config, tmp_path / "plain",
                      tmp_path / "ck", progress=False)
    adversarial = fine_tune(data, data.iloc[0:0], LABELS, str(tiny_model_dir), 48, config, tmp_path / "dann",
                            tmp_path / "ck", progress=False, objectives=[AdversarialObjective(target, weight=1.0)])
    assert adversarial.history[0]["train_loss"] > plain.history[0]["train_loss"] + 0.3  # ~ln 2 of domain loss
    saved = load_classifier_dir(str(adversarial.model_dir))
    assert not any("domain" in name for name, _ in saved.named_parameters())  # the head is not saved with it
    assert not any(saved.base_model._forward_hooks.values())  # the feature tap is removed
    assert not torch.equal(saved.classifier.weight, load_classifier_dir(str(plain.model_dir)).classifier.weight)



def test_a_mean_pooled_classifier_is_adapted_on_the_mean_of_its_token_states_as_its_head_reads(sentence_model_dir):
    from tasks.mean_pooling import mean_pool

    model = load_classifier(str(sentence_model_dir), LABELS, "mean").eval()
    tap = FeatureTap(model)
    ids = torch.tensor([[101, 2307, 9808, 102, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    model(input_ids=ids, attention_mask=mask)
    hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    expected = mean_pool(hidden, mask)
    assert torch.allclose(tap.take_task(), expected, atol=1e-6)
    assert torch.allclose(tap.take(), expected, atol=1e-6)
    assert not torch.allclose(expected, hidden[:, 0])  # not the [CLS] state
    tap.close()
