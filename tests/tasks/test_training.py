"""The fine-tuning engine on a tiny random BERT: saved models, determinism, resume, NaN stop, loss weights, and the
training-objective protocol."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd
import pytest
import torch
from safetensors import safe_open

from tasks.config import TrainConfig
from tasks.early_stopping import fresh_state, track_best
from tasks.errors import ConfigError, ModelError, TrainingError
from tasks.evaluation import compute_metrics
from tasks.inference import predict
from tasks.models import load_classifier, load_classifier_dir, load_tokenizer
from tasks.objectives import TrainingContext
from tasks.training import fine_tune, run_key
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


def _flipped(frame: pd.DataFrame) -> pd.DataFrame:
    """The same texts with the opposite labels: the better the model learns the task, the worse it scores on them."""
    return frame.assign(label=frame["label"].map({"negative": "positive", "positive": "negative"}))


def test_early_stopping_stops_when_validation_gets_worse_and_keeps_the_best_epoch(tmp_path, tiny_model_dir, data):
    train_frame, val_frame = data
    flipped = _flipped(val_frame)  # 40 texts: enough (>= min_validation_size 30) to pick the epoch and stop
    result = train(tmp_path, tiny_model_dir, (train_frame, flipped), epochs=8, early_stopping_patience=1)
    scores = [row["val_macro_f1"] for row in result.history]
    assert result.stopped_early and len(result.history) < 8
    assert result.best_epoch == len(scores) - scores[::-1].index(max(scores))  # the last epoch with the best score
    assert scores[-1] < max(scores)  # the epoch it stopped on was worse, so keeping the best one matters
    saved = load_classifier_dir(str(result.model_dir))
    predicted = predict(saved, load_tokenizer(str(result.model_dir)), flipped["text"].tolist(), 48)
    assert compute_metrics(flipped["label"].tolist(), predicted.labels, LABELS)["macro_f1"] == \
        pytest.approx(max(scores))  # the saved weights are the best epoch's, not the last one's


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
    state = fresh_state()
    model = torch.nn.Linear(2, 2)
    for epoch, score in enumerate([0.8, 0.9, 0.9, 0.7], start=1):
        track_best(state, {"epoch": epoch, "val_macro_f1": score}, model, tmp_path)
    assert state["best_epoch"] == 3 and state["best_score"] == 0.9 and state["bad_epochs"] == 1


def test_frozen_embeddings_are_not_updated(tmp_path, tiny_model_dir, data):
    result = train(tmp_path, tiny_model_dir, data, freeze_embeddings=True)
    before = load_classifier(str(tiny_model_dir), LABELS).get_input_embeddings().weight
    after = load_classifier_dir(str(result.model_dir)).get_input_embeddings().weight
    assert torch.equal(before, after)


def test_frozen_lowest_layers_and_embedding_block_are_not_updated_and_the_layers_above_are(tmp_path, tiny_model_dir,
                                                                                            data):
    result = train(tmp_path, tiny_model_dir, data, freeze_layers=1, epochs=1)
    before = dict(load_classifier(str(tiny_model_dir), LABELS).named_parameters())
    after = dict(load_classifier_dir(str(result.model_dir)).named_parameters())
    unchanged = {name for name in before if torch.equal(before[name], after[name])}
    frozen = {name for name in before if name.startswith(("bert.embeddings.", "bert.encoder.layer.0."))}
    assert frozen and unchanged == frozen  # layer 1, the pooler and the head all trained


def test_freezing_every_layer_is_refused_with_how_many_may_be(tmp_path, tiny_model_dir, data):
    with pytest.raises(ConfigError, match="train.freeze_layers is 2, but the model has 2 layers and at least one must "
                                          "train; set at most 1"):
        train(tmp_path, tiny_model_dir, data, freeze_layers=2, epochs=1)


@pytest.mark.reliability
def test_a_model_trained_on_other_labels_is_refused(tmp_path, tiny_model_dir, data):
    result = train(tmp_path, tiny_model_dir, data, epochs=1)
    with pytest.raises(ModelError, match=r"was trained on labels \['negative', 'positive'\] but the data has "
                                         r"\['bad', 'good', 'meh'\]"):
        load_classifier(str(result.model_dir), ("bad", "good", "meh"))


def test_gradient_accumulation_takes_one_optimizer_step_per_n_batches(tmp_path, tiny_model_dir, data):
    plain = train(tmp_path, tiny_model_dir, data, name="plain", batch_size=16, batching="texts")
    accumulated = train(tmp_path, tiny_model_dir, data, name="acc", batch_size=16, batching="texts",
                        gradient_accumulation_steps=2)
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


# --- the training-objective protocol: the loop runs any objective, knowing none by name -----------------------------

class _Pull(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.position = torch.nn.Parameter(torch.zeros(1))


@dataclass(frozen=True)
class PullObjective:
    """A test objective: `constant + (position - 1)^2` for a head of its own, unconnected to the classifier."""

    constant: float
    calls: list = field(default_factory=list, compare=False)  # what the loop asked of it, in order

    def bind(self, context: TrainingContext) -> _PullRun:
        self.calls.append("bind")
        return _PullRun(self)

    def fingerprint(self) -> list:
        return ["pull", self.constant]

    def describe(self) -> str:
        return f"pull (constant {self.constant:g})"


class _PullRun:
    def __init__(self, objective: PullObjective):
        self.objective, self.head = objective, _Pull()
        self.heads = {"pull": self.head}
        self.terms: list[tuple[int, int, int, float, float]] = []  # epoch, step, rows, progress, loss

    def setup(self) -> dict:
        self.objective.calls.append("setup")
        return {"pull_setup": True}

    def loss(self, epoch: int, step: int, batch, progress: float) -> torch.Tensor:
        term = self.objective.constant + ((self.head.position - 1.0) ** 2).sum()
        self.terms.append((epoch, step, len(batch), progress, term.item()))
        self.objective.calls.append(self)
        return term

    def close(self) -> None:
        self.objective.calls.append("close")


def test_any_objective_gets_its_head_trained_and_checkpointed_and_its_loss_added_at_every_step(tmp_path,
                                                                                              tiny_model_dir, data):
    train_frame, val_frame = data
    config = settings(max_grad_norm=1e9, keep_checkpoints=True,  # no clipping: the head cannot move the classifier
                      batching="texts")  # 10 steps an epoch
    plain = fine_tune(train_frame, val_frame, LABELS, str(tiny_model_dir), 48, config, tmp_path / "plain",
                      tmp_path / "ck", progress=False)
    objective = PullObjective(constant=3.0)
    pulled = fine_tune(train_frame, val_frame, LABELS, str(tiny_model_dir), 48, config, tmp_path / "pulled",
                       tmp_path / "ck", progress=False, objectives=[objective])
    [run] = {call for call in objective.calls if isinstance(call, _PullRun)}
    assert [call for call in objective.calls if isinstance(call, str)] == ["bind", "setup", "close"]
    assert pulled.extra == {"pull_setup": True}
    assert [(epoch, step) for epoch, step, *_ in run.terms] == [(e, s) for e in (1, 2) for s in range(10)]
    progress = [term[3] for term in run.terms]
    assert progress == sorted(progress) and progress[0] == pytest.approx(1 / 20) and progress[-1] == 1.0
    for epoch, (with_it, without) in enumerate(zip(pulled.history, plain.history, strict=True), start=1):
        terms = [(rows, value) for e, _, rows, _, value in run.terms if e == epoch]
        added = sum(rows * value for rows, value in terms) / sum(rows for rows, _ in terms)
        assert with_it["train_loss"] == pytest.approx(without["train_loss"] + added, rel=1e-6)
        assert with_it["val_macro_f1"] == without["val_macro_f1"]
    assert run.terms[-1][4] < run.terms[0][4]  # the head was trained: its term fell
    key = run_key(train_frame, val_frame, LABELS, str(tiny_model_dir), 48, config, [objective])
    with safe_open(str(tmp_path / "ck" / key / "epoch-2" / "model.safetensors"), framework="pt") as weights:
        assert 0 < weights.get_tensor("pull.position").item() < 1  # checkpointed, moved towards 1
    saved = load_classifier_dir(str(pulled.model_dir))
    assert not any("pull" in name for name, _ in saved.named_parameters())  # not saved with the model
    assert all(torch.equal(a, b) for a, b in zip(saved.parameters(),
                                                 load_classifier_dir(str(plain.model_dir)).parameters(), strict=True))


def test_token_batches_train_with_a_schedule_as_long_as_their_steps(tmp_path, tiny_model_dir, data):
    result = train(tmp_path, tiny_model_dir, data, batching="tokens", warmup_ratio=0.0)
    train_frame, _ = data
    steps = [row for epoch in result.history for row in epoch["steps"]]
    assert len(steps) == result.history[-1]["optimizer_steps"]
    assert len(steps) != 2 * len(train_frame) // 16  # precondition: not the count that 16 texts a step give
    assert steps[-1]["lr"] == pytest.approx(settings().learning_rate / len(steps))  # decayed to the last step


@dataclass(frozen=True)
class KernelProbe:
    """A test objective of no weight: the attention kernel the model has at every training step, and at the end."""

    during: list = field(default_factory=list, compare=False)
    after: list = field(default_factory=list, compare=False)

    def bind(self, context: TrainingContext) -> _KernelRun:
        return _KernelRun(self, context.model)

    def fingerprint(self) -> list:
        return ["kernel-probe"]

    def describe(self) -> str:
        return "kernel probe"


class _KernelRun:
    def __init__(self, probe: KernelProbe, model):
        self.probe, self.model = probe, model
        self.heads: dict = {}

    def kernel(self) -> str:
        return self.model.base_model.config._attn_implementation

    def setup(self) -> dict:
        return {}

    def loss(self, epoch: int, step: int, batch, progress: float) -> torch.Tensor:
        self.probe.during.append(self.kernel())
        return torch.zeros(())

    def close(self) -> None:
        self.probe.after.append(self.kernel())


@pytest.mark.parametrize(("setting", "kernel"), [("auto", "eager"), ("sdpa", "sdpa")])
def test_training_steps_run_with_the_training_attention_kernel_and_the_model_gets_its_own_back(
        tmp_path, tiny_model_dir, data, setting, kernel):
    train_frame, val_frame = data
    probe = KernelProbe()
    result = fine_tune(train_frame, val_frame, LABELS, str(tiny_model_dir), 48, settings(attention=setting),
                       tmp_path / "model", tmp_path / "ck", progress=False, objectives=[probe])
    assert probe.during == [kernel] * result.history[-1]["optimizer_steps"]  # every step of both epochs, on a CPU
    assert probe.after == ["sdpa"]  # transformers' own kernel for the architecture, as saved and served


def test_an_objective_joins_the_run_key_and_its_setup_is_not_redone_on_resume(tmp_path, tiny_model_dir, data):
    train_frame, val_frame = data
    config = settings()
    key = run_key(train_frame, val_frame, LABELS, "m", 48, config)
    assert key == run_key(train_frame, val_frame, LABELS, "m", 48, config, ())
    assert len({key, run_key(train_frame, val_frame, LABELS, "m", 48, config, [PullObjective(1.0)]),
                run_key(train_frame, val_frame, LABELS, "m", 48, config, [PullObjective(2.0)])}) == 3

    def stop_after_first_epoch(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    interrupted = PullObjective(1.0)
    with pytest.raises(KeyboardInterrupt):
        fine_tune(train_frame, val_frame, LABELS, str(tiny_model_dir), 48, config, tmp_path / "m",
                  tmp_path / "ck", progress=False, on_epoch_end=stop_after_first_epoch, objectives=[interrupted])
    assert [call for call in interrupted.calls if isinstance(call, str)] == ["bind", "setup", "close"]
    resumed = PullObjective(1.0)
    result = fine_tune(train_frame, val_frame, LABELS, str(tiny_model_dir), 48, config, tmp_path / "m",
                       tmp_path / "ck", progress=False, objectives=[resumed])
    assert result.resumed_from_epoch == 1 and "pull_setup" not in result.extra
    assert [call for call in resumed.calls if isinstance(call, str)] == ["bind", "close"]  # no setup on resume


def test_two_objectives_may_not_name_the_same_head(tmp_path, tiny_model_dir, data):
    train_frame, val_frame = data
    with pytest.raises(ValueError, match="head name 'pull' is taken"):
        fine_tune(train_frame, val_frame, LABELS, str(tiny_model_dir), 48, settings(epochs=1), tmp_path / "m",
                  tmp_path / "ck", progress=False, objectives=[PullObjective(1.0), PullObjective(2.0)])


def test_each_epoch_records_its_optimizer_steps_with_loss_and_learning_rate(tmp_path, tiny_model_dir, data,
                                                                          monkeypatch):
    from tasks import progress

    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    shares: list[float] = []
    train_frame, val_frame = data
    result = fine_tune(train_frame, val_frame, LABELS, str(tiny_model_dir), 48,
                       settings(epochs=2, gradient_accumulation_steps=2), tmp_path / "m", tmp_path / "c",
                       progress=True, on_progress=shares.append)
    steps = [step for row in result.history for step in row["steps"]]
    assert [step["step"] for step in steps] == list(range(1, result.history[-1]["optimizer_steps"] + 1))
    assert len(result.history[0]["steps"]) == result.history[0]["optimizer_steps"]  # one row per optimizer step
    rates = [step["lr"] for step in steps]
    assert rates[0] < max(rates) and rates[-1] < max(rates)  # warm-up, then decay
    assert all(step["train_loss"] > 0 for step in steps)
    assert shares == sorted(shares) and shares[-1] == 1.0 and shares[0] <= 0.1  # the share of both epochs


@pytest.mark.parametrize(("setting", "saved"), [(0.0, 0.0), (None, 0.1)])
def test_the_attention_dropout_setting_is_the_one_the_fine_tuned_model_trained_and_saved_with(
        tmp_path, tiny_model_dir, data, setting, saved):
    result = train(tmp_path, tiny_model_dir, data, epochs=1, attention_dropout=setting)
    assert json.loads((result.model_dir / "config.json").read_text())["attention_probs_dropout_prob"] == saved
