"""Self-training: the first-round model labels the unlabelled target texts and a second round learns from them."""

from __future__ import annotations

import json

import pandas as pd

from flows.layout import layout_of, read_role, target_pool
from flows.stage_registry import run_stage
from flows.stages import train as train_stage
from tasks.config import StrategyConfig
from tasks.models import load_classifier_dir
from tests.conftest import SAMPLE


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
        run_stage(config, stage)
    return config


def _recording_fine_tune(monkeypatch) -> list[tuple[pd.DataFrame, str]]:
    """Each fine-tune's training set and starting model, in call order (the real fine-tune still runs)."""
    calls: list[tuple[pd.DataFrame, str]] = []
    real_fine_tune = train_stage.fine_tune
    monkeypatch.setattr(train_stage, "fine_tune", lambda train, validation, labels, model_name, *args, **kwargs:
                        calls.append((train.copy(), model_name)) or
                        real_fine_tune(train, validation, labels, model_name, *args, **kwargs))
    return calls


def test_the_shift_branch_self_trains_in_two_rounds_on_pseudo_labelled_target_texts(tiny_config, tmp_path,
                                                                                     monkeypatch):
    config = _self_training_config(tiny_config, tmp_path)
    calls = _recording_fine_tune(monkeypatch)
    summary = run_stage(config, "train")
    layout = layout_of(config)
    pseudo = pd.read_parquet(layout.pseudo_labels)
    unlabeled = read_role(layout, "target_unlabeled")
    assert 0 < summary.pseudo_labels.selected == len(pseudo) <= 40
    assert summary.pseudo_labels.candidates == len(unlabeled)
    assert set(pseudo["text"]) <= set(unlabeled["text"])  # labels only for texts the model never saw labelled
    assert pseudo["label"].value_counts().nunique() == 1  # classes kept equal
    rounds = [row["round"] for row in summary.history]
    assert rounds[-1] == 2 and set(rounds[:-1]) == {1}  # round 1 (may stop early), then one epoch of round 2
    assert [row["epoch"] for row in summary.history] == list(range(1, len(rounds) + 1))
    assert summary.strategies[0].startswith("pseudo_labeling")
    assert "second round continues from the first model on the source and the target texts" \
        in summary.strategies[0]
    (_, first_start), (second, second_start) = calls
    assert first_start == config.model.name_or_path and second_start.endswith("round-1")  # continues from round 1
    prepared = pd.read_parquet(layout.training_set)  # by default the second round keeps the source
    assert len(second) == len(prepared) + len(pseudo) == summary.n_train
    assert load_classifier_dir(summary.model_dir).config.id2label == {0: "negative", 1: "positive"}
    assert second_start == str(layout.first_round) != summary.model_dir  # round 1 is kept apart from the model
    saved = json.loads(layout.history("adapted").read_text())
    assert saved["round_1"]["history"] and saved["pseudo_labels"]["selected_per_class"]["negative"] == len(pseudo) // 2


def test_without_the_source_the_second_round_trains_on_the_target_texts_alone(tiny_config, tmp_path, monkeypatch):
    config = _self_training_config(tiny_config, tmp_path, pseudo_label_with_source=False)
    calls = _recording_fine_tune(monkeypatch)
    summary = run_stage(config, "train")
    layout = layout_of(config)
    pseudo, prepared = pd.read_parquet(layout.pseudo_labels), pd.read_parquet(layout.training_set)
    labelled_target = prepared[prepared["domain"] == "target"]
    second = calls[1][0]
    assert len(pseudo) > 0 and set(second["text"]) == set(labelled_target["text"]) | set(pseudo["text"])
    assert (second["weight"] == 1.0).all()  # each target text counts once
    assert "second round continues from the first model on the target texts" in summary.strategies[0]


def test_a_fresh_student_learns_from_the_source_and_the_pseudo_labels(tiny_config, tmp_path, monkeypatch):
    config = _self_training_config(tiny_config, tmp_path, pseudo_label_student="fresh", pseudo_label_with_source=True,
                                   pseudo_label_epochs=2)
    calls = _recording_fine_tune(monkeypatch)
    summary = run_stage(config, "train")
    layout = layout_of(config)
    pseudo, prepared = pd.read_parquet(layout.pseudo_labels), pd.read_parquet(layout.training_set)
    (_, teacher_start), (second, student_start) = calls
    assert teacher_start == student_start == config.model.name_or_path  # the student does not start from the teacher
    assert len(pseudo) > 0 and len(second) == len(prepared) + len(pseudo) == summary.n_train
    assert set(prepared["text"]) | set(pseudo["text"]) == set(second["text"])  # the source is trained on again
    assert second["weight"].tolist() == prepared["weight"].tolist() + [1.0] * len(pseudo)  # prepared weights kept
    assert [row["round"] for row in summary.history].count(2) == 2  # the student trains its own epochs
    assert "second round trains a fresh model on the source and the target texts" in summary.strategies[0]


def test_the_joint_branch_self_trains_on_the_source_and_the_pseudo_labels(tiny_config, tmp_path,
                                                                                      monkeypatch):
    config = _self_training_config(tiny_config, tmp_path, branch="joint_training",  # self-trains by default
                                   shift_strategies=["vocabulary_substitution", "augmentation"])
    calls = _recording_fine_tune(monkeypatch)
    summary = run_stage(config, "train")
    layout = layout_of(config)
    pseudo, prepared = pd.read_parquet(layout.pseudo_labels), pd.read_parquet(layout.training_set)
    assert pd.read_json(layout.prepared, typ="series")["branch"] == "joint_training"
    assert 0 < summary.pseudo_labels.selected == len(pseudo)
    assert set(pseudo["text"]) <= set(read_role(layout, "target_unlabeled")["text"])
    (first, first_start), (second, second_start) = calls
    assert first_start == config.model.name_or_path and second_start == str(layout.first_round)
    assert len(first) == len(prepared) and len(second) == len(prepared) + len(pseudo) == summary.n_train
    source, labelled = read_role(layout, "source_train"), read_role(layout, "target_labeled")
    assert sorted(prepared["text"]) == sorted([*source["text"], *labelled["text"]])  # no rewriting, no copies
    assert "second round continues from the first model on the source and the target texts" \
        in summary.strategies[0]


def test_the_joint_branch_asked_not_to_self_train_neither_pseudo_labels_nor_runs_masked_lm(tiny_config):
    config = tiny_config.model_copy(update={"strategy": StrategyConfig(
        branch="joint_training", joint_pseudo_labeling=False, shift_strategies=["pseudo_labeling", "target_mlm"])})
    for stage in ("validate", "similarity", "prepare", "train"):
        summary = run_stage(config, stage)
    assert summary.strategies == [] and summary.pseudo_labels is None
    assert pd.read_parquet(layout_of(config).pseudo_labels).empty


def test_the_shift_branch_trains_its_first_round_domain_adversarially(tiny_config, tmp_path, monkeypatch):
    config = _self_training_config(tiny_config, tmp_path, shift_strategies=["pseudo_labeling", "domain_adversarial"],
                                   adversarial_weight=0.2)
    calls = []
    real_fine_tune = train_stage.fine_tune
    monkeypatch.setattr(train_stage, "fine_tune", lambda *args, **kwargs:
                        calls.append(list(kwargs.get("objectives", ()))) or real_fine_tune(*args, **kwargs))
    summary = run_stage(config, "train")
    (first,), second = calls
    pool = target_pool(layout_of(config))
    assert first.weight == 0.2 and set(first.texts) == set(pool["text"]) and second == []
    assert summary.strategies[0].startswith("domain_adversarial (gradient reversal up to 0.2")

