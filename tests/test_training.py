"""The fine-tuning engine on a tiny random BERT: saved models, determinism, resume, NaN stop, loss weights."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from tasks.config import TrainConfig
from tasks.errors import ModelError, TrainingError
from tasks.inference import predict
from tasks.models import load_classifier, load_classifier_dir, load_tokenizer
from tasks.training import fine_tune
from tests.conftest import SAMPLE

LABELS = ("negative", "positive")


@pytest.fixture(scope="module")
def data():
    frame = pd.read_csv(SAMPLE / "kitchen.csv")
    examples = pd.DataFrame({"text": frame["title"] + ". " + frame["text"], "label": frame["label"]})
    return examples.iloc[:160].reset_index(drop=True), examples.iloc[160:200].reset_index(drop=True)


def settings(**overrides) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 16, "learning_rate": 1e-2, "freeze_embeddings": False, "seed": 0,
            "early_stopping_patience": 0, "precision": "fp32"}
    return TrainConfig(**{**base, **overrides})


def train(tmp_path, tiny_model_dir, data, name="model", validation=None, **overrides):
    train_frame, val_frame = data
    return fine_tune(train_frame, val_frame if validation is None else validation, LABELS, str(tiny_model_dir), 48,
                     settings(**overrides), tmp_path / name, tmp_path / "checkpoints", progress=False)


def test_the_saved_model_is_a_standard_hf_directory_with_the_label_mapping(tmp_path, tiny_model_dir, data):
    result = train(tmp_path, tiny_model_dir, data)
    saved = sorted(path.name for path in result.model_dir.iterdir())
    assert "config.json" in saved and "model.safetensors" in saved and "tokenizer.json" in saved
    assert not any(name.endswith(".bin") for name in saved)
    config = json.loads((result.model_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    model = load_classifier_dir(str(result.model_dir))
    predicted = predict(model, load_tokenizer(str(result.model_dir)), ["great kettle", "broke in a week"], 48)
    assert set(predicted.labels) <= set(LABELS) and predicted.scores.min() >= 0.5


def test_training_learns_the_task(tmp_path, tiny_model_dir, data):
    result = train(tmp_path, tiny_model_dir, data, epochs=4)
    history = result.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_accuracy"] > 0.7


def test_same_seed_and_data_give_the_same_metrics(tmp_path, tiny_model_dir, data):
    first = train(tmp_path, tiny_model_dir, data, name="a")
    second = train(tmp_path, tiny_model_dir, data, name="b")
    other = train(tmp_path, tiny_model_dir, data, name="c", seed=1)
    assert first.history == second.history
    assert first.history != other.history


@pytest.mark.reliability
def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, tiny_model_dir, data):
    uninterrupted = train(tmp_path, tiny_model_dir, data, name="full", epochs=3)

    def stop_after_first_epoch(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    train_frame, val_frame = data
    with pytest.raises(KeyboardInterrupt):
        fine_tune(train_frame, val_frame, LABELS, str(tiny_model_dir), 48, settings(epochs=3), tmp_path / "resumed",
                  tmp_path / "checkpoints", progress=False, on_epoch_end=stop_after_first_epoch)
    assert not (tmp_path / "resumed").exists()  # nothing half-written
    resumed = train(tmp_path, tiny_model_dir, data, name="resumed", epochs=3)
    assert resumed.resumed_from_epoch == 1
    assert resumed.history == uninterrupted.history


@pytest.mark.reliability
def test_a_damaged_checkpoint_is_skipped_not_loaded(tmp_path, tiny_model_dir, data, caplog):
    def stop(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt

    train_frame, val_frame = data
    with pytest.raises(KeyboardInterrupt):
        fine_tune(train_frame, val_frame, LABELS, str(tiny_model_dir), 48, settings(epochs=3, keep_checkpoints=True),
                  tmp_path / "m", tmp_path / "checkpoints", progress=False, on_epoch_end=stop)
    [checkpoint] = list((tmp_path / "checkpoints").glob("*/epoch-2"))
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    result = train(tmp_path, tiny_model_dir, data, name="m", epochs=3)
    assert result.resumed_from_epoch is None
    assert f"skipping checkpoint {checkpoint}" in caplog.text


@pytest.mark.reliability
def test_a_nan_loss_stops_training_with_a_clear_error(tmp_path, tiny_model_dir, data):
    with pytest.raises(TrainingError, match=r"training loss became (nan|inf).*lower train.learning_rate"):
        train(tmp_path, tiny_model_dir, data, learning_rate=1e6, max_grad_norm=1e12)
    assert not (tmp_path / "model").exists()


def test_per_sample_weights_steer_the_model(tmp_path, tiny_model_dir, data):
    train_frame, val_frame = data
    weighted = train_frame.assign(weight=(train_frame["label"] == "positive").astype(float) + 1e-3)
    result = train(tmp_path, tiny_model_dir, (weighted, val_frame), epochs=3)
    model = load_classifier_dir(str(result.model_dir))
    predicted = predict(model, load_tokenizer(str(result.model_dir)), val_frame["text"].tolist(), 48)
    assert predicted.labels.count("positive") > 0.9 * len(val_frame)


def test_early_stopping_keeps_the_best_epoch(tmp_path, tiny_model_dir, data):
    result = train(tmp_path, tiny_model_dir, data, epochs=8, early_stopping_patience=1)
    scores = [row["val_macro_f1"] for row in result.history]
    assert result.best_epoch == len(scores) - scores[::-1].index(max(scores))  # the last epoch with the best score
    if result.stopped_early:
        assert len(result.history) < 8


def test_a_validation_split_too_small_to_tell_epochs_apart_neither_stops_nor_picks_the_epoch(tmp_path,
                                                                                             tiny_model_dir, data):
    train_frame, val_frame = data
    # ten validation texts with wrong labels: the better the model learns, the worse it scores on them
    flipped = val_frame.iloc[:10].assign(label=val_frame["label"].iloc[:10].map(
        {"negative": "positive", "positive": "negative"}))
    picked = train(tmp_path, tiny_model_dir, (train_frame, flipped), "picked", epochs=4, early_stopping_patience=1,
                   min_validation_size=10)
    kept = train(tmp_path, tiny_model_dir, (train_frame, flipped), "kept", epochs=4, early_stopping_patience=1)
    assert picked.stopped_early and picked.best_epoch < len(picked.history) < 4  # the control: it would decide
    assert not kept.stopped_early and kept.best_epoch == len(kept.history) == 4  # under 30 texts: the last epoch
    assert all(row["val_accuracy"] is not None for row in kept.history)  # still reported every epoch


def test_a_tie_on_the_validation_split_keeps_the_later_epoch(tmp_path):
    from tasks.training import _track_best

    state = {"history": [], "best_epoch": 0, "best_score": None, "bad_epochs": 0}
    model = torch.nn.Linear(2, 2)
    for epoch, score in enumerate([0.8, 0.9, 0.9, 0.7], start=1):
        _track_best(state, {"epoch": epoch, "val_macro_f1": score}, model, tmp_path)
    assert state["best_epoch"] == 3 and state["best_score"] == 0.9 and state["bad_epochs"] == 1


def test_frozen_embeddings_are_not_updated(tmp_path, tiny_model_dir, data):
    result = train(tmp_path, tiny_model_dir, data, freeze_embeddings=True)
    before = load_classifier(str(tiny_model_dir), LABELS).get_input_embeddings().weight
    after = load_classifier_dir(str(result.model_dir)).get_input_embeddings().weight
    assert torch.equal(before, after)


@pytest.mark.reliability
def test_a_model_trained_on_other_labels_is_refused(tmp_path, tiny_model_dir, data):
    result = train(tmp_path, tiny_model_dir, data, epochs=1)
    with pytest.raises(ModelError, match=r"was trained on labels \['negative', 'positive'\] but the data has "
                                         r"\['bad', 'good', 'meh'\]"):
        load_classifier(str(result.model_dir), ("bad", "good", "meh"))


def test_gradient_accumulation_takes_one_optimizer_step_per_n_batches(tmp_path, tiny_model_dir, data):
    plain = train(tmp_path, tiny_model_dir, data, name="plain", batch_size=16)
    accumulated = train(tmp_path, tiny_model_dir, data, name="acc", batch_size=16, gradient_accumulation_steps=2)
    assert [row["optimizer_steps"] for row in plain.history] == [10, 20]
    assert [row["optimizer_steps"] for row in accumulated.history] == [5, 10]


@pytest.mark.reliability
def test_a_finished_fine_tune_is_reused_by_the_same_job_and_redone_for_a_changed_one(tmp_path, tiny_model_dir, data):
    first = train(tmp_path, tiny_model_dir, data, epochs=2)
    weights = (first.model_dir / "model.safetensors").stat().st_mtime_ns
    again = train(tmp_path, tiny_model_dir, data, epochs=2)
    assert again.extra.get("reused") is True
    assert again.history == first.history and again.best_epoch == first.best_epoch
    assert (again.model_dir / "model.safetensors").stat().st_mtime_ns == weights  # not trained or written again
    changed = train(tmp_path, tiny_model_dir, data, epochs=2, seed=1)
    assert "reused" not in changed.extra and changed.history != first.history
    fresh = train(tmp_path, tiny_model_dir, data, epochs=2, seed=1, resume=False)
    assert "reused" not in fresh.extra
