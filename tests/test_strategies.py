"""The shift-adaptation strategies beyond re-weighting: vocabulary substitution, pseudo-labelling, target masked-LM,
domain-adversarial training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from flows import stages
from tasks.branching import build_shift_training_set
from tasks.config import StrategyConfig, TrainConfig
from tasks.errors import DataError
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
from tasks.objectives.masked_lm import (
    MaskedBatches,
    MaskedLMObjective,
    build_mlm_head,
    masked_lm_loss,
    warm_up_head,
)
from tasks.pseudo_labeling import select_confident
from tasks.training import fine_tune
from tasks.vocabulary import (
    domain_specific_words,
    label_neutral,
    substitute_frame,
    substitute_text,
    substitution_map,
)
from tests.conftest import SAMPLE

LABELS = ("negative", "positive")
BOOKS = ["The novel's author writes well", "a gripping novel, the author at her best", "the plot of this novel",
         "the author's second novel is dull", "I read the novel twice", "the novel has a slow plot"]
KITCHEN = ["the blender's motor is loud", "this blender crushes ice", "a blender with a weak motor",
           "the kettle and the blender broke", "the blender's lid leaks", "the motor of the kettle"]


# --- vocabulary substitution -------------------------------------------------------------------------------------

def test_domain_specific_words_are_those_over_represented_on_one_side():
    assert domain_specific_words(BOOKS, KITCHEN, top=3, min_count=2) == ["novel", "author", "plot"]
    assert domain_specific_words(KITCHEN, BOOKS, top=2, min_count=2) == ["blender", "motor"]
    assert domain_specific_words(BOOKS, KITCHEN, top=3) == ["novel"]  # "author" is seen twice: below min_count
    assert "the" not in domain_specific_words(BOOKS, KITCHEN, top=50)  # stopwords are never mapped


def test_words_that_carry_the_label_are_never_substituted():
    texts = ["boring novel", "boring plot", "great novel", "great plot", "novel", "plot"]
    labels = ["negative", "negative", "positive", "positive", "negative", "positive"]
    assert label_neutral(["boring", "great", "novel", "plot"], texts, labels) == ["novel", "plot"]


def test_each_source_word_maps_to_its_nearest_target_word_above_the_similarity_floor():
    source_vectors = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    target_vectors = np.array([[0.9, 0.1], [0.1, 0.9]])
    mapping = substitution_map(["novel", "author", "chapter"], ["blender", "maker"], source_vectors, target_vectors,
                               min_similarity=0.5)
    assert mapping == {"novel": "blender", "author": "maker"}  # "chapter" is near nothing: left alone


def test_substitution_replaces_whole_words_keeps_capitals_and_is_seeded():
    mapping = {"novel": "blender", "author": "maker"}
    assert substitute_text("Novel by the author; novella stays", mapping) == "Blender by the maker; novella stays"
    frame = pd.DataFrame({"text": BOOKS, "label": ["positive"] * 6})
    changed, count = substitute_frame(frame, mapping, share=1.0, seed=0)
    assert count == 6 and not changed["text"].str.contains("novel").any()
    assert changed["label"].tolist() == frame["label"].tolist() and frame["text"].tolist() == BOOKS
    half, _ = substitute_frame(frame, mapping, share=0.5, seed=3)
    assert half.equals(substitute_frame(frame, mapping, share=0.5, seed=3)[0])


def test_the_shift_training_set_rewrites_a_share_of_the_source_with_the_mapping():
    source = pd.DataFrame({"text": BOOKS * 5, "label": ["a", "b"] * 15})
    target = pd.DataFrame({"text": KITCHEN[:2], "label": ["a", "b"]})
    strategy = StrategyConfig(shift_strategies=["vocabulary_substitution"], substitution_share=1.0)
    frame, applied = build_shift_training_set(source, target, strategy, None, [], seed=0,
                                              substitution={"novel": "blender"})
    assert applied[0].startswith("vocabulary_substitution (30 source texts rewritten with 1 word mappings")
    assert not frame[frame.domain == "source"]["text"].str.contains("novel").any()


def test_prepare_maps_words_with_the_foundation_model_and_records_the_mapping(tiny_config):
    config = tiny_config.model_copy(update={"strategy": StrategyConfig(
        branch="shift_adaptation", shift_strategies=["vocabulary_substitution"], substitution_min_similarity=-1.0)})
    config = config.model_copy(update={"data": config.data.model_copy(update={"source": SAMPLE / "books.csv"})})
    stages.validate(config)
    stages.similarity(config)
    summary = stages.prepare(config)
    assert summary["substitutions"], "books -> kitchen has domain-specific words on both sides"
    target_words = set(domain_specific_words(stages.target_pool(config)["text"].tolist(),
                                             stages.read_role(config, "source_train")["text"].tolist(), 150))
    assert set(summary["substitutions"].values()) <= target_words
    assert summary["strategies"][0].startswith("vocabulary_substitution")


# --- pseudo-labelling ----------------------------------------------------------------------------------------------

def test_only_confident_predictions_become_pseudo_labels_equal_per_class_most_confident_first():
    texts = ["a", "b", "c", "d", "e", "f"]
    probabilities = np.array([[0.95, 0.05], [0.99, 0.01], [0.6, 0.4], [0.02, 0.98], [0.3, 0.7], [0.97, 0.03]])
    chosen = select_confident(texts, probabilities, LABELS, threshold=0.9, max_per_class=10)
    # three confident negatives but one confident positive: one of each, the most confident negative first
    assert chosen[["text", "label"]].values.tolist() == [["b", "negative"], ["d", "positive"]]
    assert chosen["confidence"].min() >= 0.9
    capped = select_confident(texts * 2, np.vstack([probabilities] * 2), LABELS, threshold=0.9, max_per_class=1)
    assert capped["label"].tolist() == ["negative", "positive"]


def test_no_pseudo_label_when_a_class_has_no_confident_text():
    chosen = select_confident(["a", "b"], np.array([[0.99, 0.01], [0.95, 0.05]]), LABELS, 0.9, 10)
    assert chosen.empty and list(chosen.columns) == ["text", "label", "confidence"]


def _self_training_config(tiny_config, tmp_path, **strategy):
    """The shift branch with pseudo-labelling on the kitchen sample, its stages up to `train` run."""
    # a near domain, so that the tiny random model's first round predicts both classes
    kitchen = pd.read_csv(SAMPLE / "kitchen.csv")
    files = {}
    for role, rows in {"source": kitchen.iloc[:240], "target_labeled": kitchen.iloc[240:260],
                       "target_unlabeled": kitchen.iloc[260:340], "target_test": kitchen.iloc[340:]}.items():
        files[role] = tmp_path / f"{role}.csv"
        rows.to_csv(files[role], index=False)
    data = tiny_config.data.model_copy(update={"target": None, **files})
    strategy = {"branch": "shift_adaptation", "shift_strategies": ["pseudo_labeling"], "pseudo_label_threshold": 0.5,
                "pseudo_label_max_per_class": 20, "pseudo_label_epochs": 1, "shift_target_weight": 1.0, **strategy}
    config = tiny_config.model_copy(update={"data": data, "strategy": StrategyConfig(**strategy)})
    config.train.epochs, config.split.source_test_size = 3, 0
    for stage in ("validate", "similarity", "prepare"):
        getattr(stages, stage)(config)
    return config


def _recording_fine_tune(monkeypatch) -> list[tuple[pd.DataFrame, str]]:
    """Each fine-tune's training set and starting model, in call order (the real fine-tune still runs)."""
    calls: list[tuple[pd.DataFrame, str]] = []
    real_fine_tune = stages.fine_tune
    monkeypatch.setattr(stages, "fine_tune", lambda train, validation, labels, model_name, *args, **kwargs:
                        calls.append((train.copy(), model_name)) or
                        real_fine_tune(train, validation, labels, model_name, *args, **kwargs))
    return calls


def test_the_shift_branch_self_trains_in_two_rounds_on_pseudo_labelled_target_texts(tiny_config, tmp_path,
                                                                                     monkeypatch):
    config = _self_training_config(tiny_config, tmp_path)
    calls = _recording_fine_tune(monkeypatch)
    summary = stages.train(config, "adapted", progress=False)
    layout = stages.layout_of(config)
    pseudo = pd.read_parquet(layout.pseudo_labels)
    unlabeled = stages.read_role(config, "target_unlabeled")
    assert 0 < summary["selected"] == len(pseudo) <= 40 and summary["candidates"] == len(unlabeled)
    assert set(pseudo["text"]) <= set(unlabeled["text"])  # labels only for texts the model never saw labelled
    assert pseudo["label"].value_counts().nunique() == 1  # classes kept equal
    rounds = [row["round"] for row in summary["history"]]
    assert rounds[-1] == 2 and set(rounds[:-1]) == {1}  # round 1 (may stop early), then one epoch of round 2
    assert [row["epoch"] for row in summary["history"]] == list(range(1, len(rounds) + 1))
    assert summary["strategies"][0].startswith("pseudo_labeling")
    assert "second round continues from the first model on the source and the target texts" \
        in summary["strategies"][0]
    (_, first_start), (second, second_start) = calls
    assert first_start == config.model.name_or_path and second_start.endswith("round-1")  # continues from round 1
    prepared = pd.read_parquet(layout.training_set)  # by default the second round keeps the source
    assert len(second) == len(prepared) + len(pseudo) == summary["n_train"]
    assert load_classifier_dir(summary["model_dir"]).config.id2label == {0: "negative", 1: "positive"}
    assert not (layout.checkpoints / "self-training").exists()  # the first-round model is not left behind
    saved = json.loads(layout.history("adapted").read_text())
    assert saved["round_1"]["history"] and saved["selected_per_class"]["negative"] == len(pseudo) // 2


def test_without_the_source_the_second_round_trains_on_the_target_texts_alone(tiny_config, tmp_path, monkeypatch):
    config = _self_training_config(tiny_config, tmp_path, pseudo_label_with_source=False)
    calls = _recording_fine_tune(monkeypatch)
    summary = stages.train(config, "adapted", progress=False)
    layout = stages.layout_of(config)
    pseudo, prepared = pd.read_parquet(layout.pseudo_labels), pd.read_parquet(layout.training_set)
    labelled_target = prepared[prepared["domain"] == "target"]
    second = calls[1][0]
    assert len(pseudo) > 0 and set(second["text"]) == set(labelled_target["text"]) | set(pseudo["text"])
    assert (second["weight"] == 1.0).all()  # each target text counts once
    assert "second round continues from the first model on the target texts" in summary["strategies"][0]


def test_a_fresh_student_learns_from_the_source_and_the_pseudo_labels(tiny_config, tmp_path, monkeypatch):
    config = _self_training_config(tiny_config, tmp_path, pseudo_label_student="fresh", pseudo_label_with_source=True,
                                   pseudo_label_epochs=2)
    calls = _recording_fine_tune(monkeypatch)
    summary = stages.train(config, "adapted", progress=False)
    layout = stages.layout_of(config)
    pseudo, prepared = pd.read_parquet(layout.pseudo_labels), pd.read_parquet(layout.training_set)
    (_, teacher_start), (second, student_start) = calls
    assert teacher_start == student_start == config.model.name_or_path  # the student does not start from the teacher
    assert len(pseudo) > 0 and len(second) == len(prepared) + len(pseudo) == summary["n_train"]
    assert set(prepared["text"]) | set(pseudo["text"]) == set(second["text"])  # the source is trained on again
    assert second["weight"].tolist() == prepared["weight"].tolist() + [1.0] * len(pseudo)  # prepared weights kept
    assert [row["round"] for row in summary["history"]].count(2) == 2  # the student trains its own epochs
    assert "second round trains a fresh model on the source and the target texts" in summary["strategies"][0]


def test_the_joint_branch_neither_pseudo_labels_nor_runs_masked_lm(tiny_config):
    config = tiny_config.model_copy(update={"strategy": StrategyConfig(
        branch="joint_training", shift_strategies=["pseudo_labeling", "target_mlm"])})
    for stage in ("validate", "similarity", "prepare"):
        getattr(stages, stage)(config)
    summary = stages.train(config, "adapted", progress=False)
    assert summary["strategies"] == [] and "selected" not in summary
    assert pd.read_parquet(stages.layout_of(config).pseudo_labels).empty


# --- target-domain masked language modelling ------------------------------------------------------------------------

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


@pytest.mark.parametrize("objective", ["target_mlm", "domain_adversarial"])
def test_an_auxiliary_objective_whose_target_texts_have_no_word_is_a_one_line_data_error(tiny_model_dir, objective):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    texts = ("", "   ")
    with pytest.raises(DataError, match=rf"^{objective}: none of the 2 unlabelled target texts has a word") as error:
        if objective == "target_mlm":
            MaskedBatches(tokenizer, MaskedLMObjective(texts), 32, 4, seed=0)
        else:
            TargetBatches(tokenizer, texts, 32, 4, seed=0)
    assert "\n" not in str(error.value)


def test_the_masked_lm_and_the_adversary_draw_the_target_texts_in_different_orders(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    texts = tuple(pd.read_csv(SAMPLE / "kitchen.csv")["text"].head(64))
    masked = MaskedBatches(tokenizer, MaskedLMObjective(texts), 48, 16, seed=0).picked(0, 0)
    adversary = TargetBatches(tokenizer, texts, 48, 16, seed=0).picked(0, 0)
    assert len(masked) == len(adversary) == 16 and masked != adversary


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


@pytest.mark.parametrize("objective", ["mlm", "adversarial"])
def test_a_run_with_an_auxiliary_objective_resumes_from_its_checkpoint_to_the_same_weights(tmp_path, tiny_model_dir,
                                                                                          objective):
    frame = pd.read_csv(SAMPLE / "kitchen.csv")
    data = pd.DataFrame({"text": frame["text"], "label": frame["label"]}).iloc[:64]
    target = tuple(frame["text"].iloc[64:128])
    auxiliary = {"objectives": [MaskedLMObjective(target) if objective == "mlm" else
                                AdversarialObjective(target, weight=1.0)]}  # its head and target batches resume too
    config = TrainConfig(epochs=2, batch_size=16, learning_rate=5e-3, freeze_embeddings=False, precision="fp32",
                         early_stopping_patience=0, keep_checkpoints=True)
    whole = fine_tune(data, data.iloc[0:0], LABELS, str(tiny_model_dir), 48, config, tmp_path / "whole",
                      tmp_path / "ck-whole", progress=False, **auxiliary)

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fine_tune(data, data.iloc[0:0], LABELS, str(tiny_model_dir), 48, config, tmp_path / "resumed",
                  tmp_path / "ck", progress=False, on_epoch_end=stop_after_first, **auxiliary)
    resumed = fine_tune(data, data.iloc[0:0], LABELS, str(tiny_model_dir), 48, config, tmp_path / "resumed",
                        tmp_path / "ck", progress=False, **auxiliary)
    assert resumed.resumed_from_epoch == 1
    assert resumed.history[-1]["train_loss"] == pytest.approx(whole.history[-1]["train_loss"], rel=1e-5)


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


# --- domain-adversarial training (DANN) -----------------------------------------------------------------------------

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


def _domain_data():
    frame = pd.read_csv(SAMPLE / "kitchen.csv")
    data = pd.DataFrame({"text": frame["title"] + ". " + frame["text"], "label": frame["label"]}).iloc[:64]
    target = tuple(pd.read_csv(SAMPLE / "electronics.csv")["text"].head(64))
    return data, target


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


def test_the_shift_branch_trains_its_first_round_domain_adversarially(tiny_config, tmp_path, monkeypatch):
    config = _self_training_config(tiny_config, tmp_path, shift_strategies=["pseudo_labeling", "domain_adversarial"],
                                   adversarial_weight=0.2)
    calls = []
    real_fine_tune = stages.fine_tune
    monkeypatch.setattr(stages, "fine_tune", lambda *args, **kwargs:
                        calls.append(kwargs.get("adversarial")) or real_fine_tune(*args, **kwargs))
    summary = stages.train(config, "adapted", progress=False)
    first, second = calls
    pool = stages.target_pool(config)
    assert first.weight == 0.2 and set(first.texts) == set(pool["text"]) and second is None
    assert summary["strategies"][0].startswith("domain_adversarial (gradient reversal up to 0.2")
