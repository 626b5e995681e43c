"""MLflow tracking and the model registry: every run tells its whole story, every version traces back to its data,
code and flow run, and the champion alias moves only through the gate."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from flows.registry import local_directory
from tasks.promotion import Scores
from tasks.provenance import dvc_md5
from tests.conftest import REPO, free_port

NAME = "adaptflow-classifier"


# --- provenance and params -------------------------------------------------------------------------------------------

def test_data_hashes_are_the_md5s_dvc_records(tmp_path):
    import yaml

    shutil.copytree(REPO / "data" / "sample", tmp_path / "sample")
    dvc = Path(sys.executable).with_name("dvc")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    subprocess.run([dvc, "add", "-q", "sample"], cwd=tmp_path, check=True)
    recorded = yaml.safe_load((tmp_path / "sample.dvc").read_text())["outs"][0]["md5"]
    assert dvc_md5(tmp_path / "sample") == recorded and recorded.endswith(".dir")
    single = tmp_path / "one.csv"
    shutil.copy(REPO / "data" / "sample" / "books.csv", single)
    subprocess.run([dvc, "add", "-q", "one.csv"], cwd=tmp_path, check=True)
    assert dvc_md5(single) == yaml.safe_load((tmp_path / "one.csv.dvc").read_text())["outs"][0]["md5"]


def test_a_file_changed_in_place_gets_a_new_hash_and_an_unchanged_one_is_read_once(tmp_path, monkeypatch):
    import dvc_data.hashfile.hash as hashing

    path = tmp_path / "data.csv"
    path.write_text("text,label\ngood,positive\n")
    reads = []
    real = hashing.file_md5
    monkeypatch.setattr(hashing, "file_md5", lambda name, *a, **k: reads.append(name) or real(name, *a, **k))
    first = dvc_md5(path)
    assert dvc_md5(path) == first and len(reads) == 1
    stat = path.stat()
    path.write_text("text,label\nbad!,negative\n"[:len(path.read_text())])  # same size, new bytes
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert dvc_md5(path) != first and len(reads) == 2


def test_params_are_the_flat_config_with_secrets_masked(tiny_config):
    from flows.tracking import run_params

    tiny_config.tracking.uri = "https://alice:s3cret@mlflow.example.com"
    params = run_params(tiny_config)
    assert params["train.epochs"] == "2" and params["split.seed"] == "0"
    assert params["tracking.uri"] == "https://alice:***@mlflow.example.com"
    assert "s3cret" not in "".join(params.values())
    assert all(len(value) <= 500 for value in params.values())


# --- the store: a shared SQLite store is retried while it is locked -------------------------------------------------

def test_a_locked_store_is_retried_with_doubling_waits_then_fails_loudly():
    from flows.mlflow_store import retry_when_locked

    waits: list[float] = []
    calls: list[int] = []

    def locked_twice() -> str:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "logged"

    assert retry_when_locked(locked_twice, sleep=waits.append) == "logged"
    assert len(calls) == 3 and waits == [0.25, 0.5]

    def always_locked() -> None:
        calls.append(1)
        raise RuntimeError("database is locked")

    calls.clear(), waits.clear()
    with pytest.raises(RuntimeError, match="database is locked"):
        retry_when_locked(always_locked, attempts=3, sleep=waits.append)
    assert len(calls) == 3 and waits == [0.25, 0.5]


def test_other_store_errors_are_not_retried_and_tracking_time_is_counted_either_way(tiny_config):
    from flows.tracking import RunTracker

    class Client:
        calls = 0

        def set_terminated(self, run_id: str, status: str) -> None:
            Client.calls += 1
            raise RuntimeError("no such table: runs")

    tracker = RunTracker(Client(), "run", tiny_config, "sqlite:///unused.db")
    with pytest.raises(RuntimeError, match="no such table"):
        tracker.close("FINISHED")
    assert Client.calls == 1 and tracker.seconds > 0


# --- a run: each stage's typed result, logged under the names the UI and the reports use ---------------------------

def test_each_stage_result_is_logged_as_its_metrics_tags_and_artifacts(tiny_config, mlflow_store, tmp_path):
    import json

    from mlflow import MlflowClient

    from flows.layout import Layout
    from flows.tracking import RunTracker
    from tasks.branching import Decision
    from tasks.results import EvaluationReport, PreparedSet, PseudoLabels, TrainSummary, ValidationSummary

    tiny_config.tracking.uri = mlflow_store
    layout = Layout(tmp_path / "outputs")
    files = {layout.validation: "{}", layout.data_docs / "index.html": "<html/>", layout.similarity: "{}",
             layout.domains_plot: "png", layout.prepared: "{}", layout.history("adapted"): "{}",
             layout.metrics: "{}"}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    layout.role("target_test").parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": ["sharp knife"], "label": ["positive"]}).to_parquet(layout.role("target_test"))
    pd.DataFrame({"text": ["a pan"], "label": ["positive"], "confidence": [0.99]}).to_parquet(layout.pseudo_labels)

    tracker = RunTracker.open(tiny_config, {}, {"adaptflow.trigger": "test"})
    tracker.log_validation(layout, ValidationSummary("passed", 0, 1, counts={"target_test": 1}))
    tracker.log_similarity(layout, Decision("shift_adaptation", False, "MMD² 0.30 > 0.10", False,
                                            {"mmd2": 0.3, "proxy_a_distance": 1.2, "note": "text"}))
    tracker.log_prepared(layout, PreparedSet("shift_adaptation", 120, ["importance_weighting", "augmentation"]))
    history = [{"epoch": 1, "train_loss": 0.9, "val_macro_f1": 0.6}, {"epoch": 2, "train_loss": 0.5,
                                                                      "val_macro_f1": float("nan")}]
    tracker.log_training(layout, TrainSummary("adapted", "m", history, 1, False, 120,
                                              pseudo_labels=PseudoLabels(candidates=40, selected=7)))
    scores = {"accuracy": 0.8, "macro_f1": 0.75, "source": {"accuracy": 0.9, "macro_f1": 0.85}}
    tracker.log_evaluation(layout, EvaluationReport(scores, "m", {"accuracy": 0.7, "macro_f1": 0.65},
                                                    {"accuracy": 0.1, "macro_f1": 0.1}), "# report")
    tracker.close("FINISHED")

    client = MlflowClient(mlflow_store)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert {key: run.data.metrics[key] for key in ("validation.errors", "validation.warnings", "rows.target_test",
                                                   "shift.mmd2", "rows.training_set", "adapted.best_epoch",
                                                   "adapted.pseudo_label_candidates", "adapted.pseudo_labeled",
                                                   "target.macro_f1", "target.source_macro_f1",
                                                   "baseline.accuracy", "gain.macro_f1")} == {
        "validation.errors": 0, "validation.warnings": 1, "rows.target_test": 1, "shift.mmd2": 0.3,
        "rows.training_set": 120, "adapted.best_epoch": 1, "adapted.pseudo_label_candidates": 40,
        "adapted.pseudo_labeled": 7, "target.macro_f1": 0.75, "target.source_macro_f1": 0.85,
        "baseline.accuracy": 0.7, "gain.macro_f1": 0.1}
    assert "shift.note" not in run.data.metrics and "baseline.source_accuracy" not in run.data.metrics
    losses = client.get_metric_history(run.info.run_id, "adapted.train_loss")
    assert sorted((metric.step, metric.value) for metric in losses) == [(1, 0.9), (2, 0.5)]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "adapted.val_macro_f1")] == [1]  # NaN: not
    assert {key: run.data.tags[key] for key in ("validation.status", "branch", "decision", "decision.forced",
                                                "decision.rationale", "strategies")} == {
        "validation.status": "passed", "branch": "shift_adaptation", "decision": "dissimilar",
        "decision.forced": "false", "decision.rationale": "MMD² 0.30 > 0.10",
        "strategies": "importance_weighting, augmentation"}
    assert [dataset.dataset.name for dataset in run.inputs.dataset_inputs] == ["target_test"]
    artifacts = {a.path for folder in ("", "validation", "similarity", "training_set", "training", "reports")
                 for a in client.list_artifacts(run.info.run_id, folder or None)}
    assert artifacts >= {"report.md", "validation/summary.json", "validation/data_docs", "similarity/report.json",
                         "similarity/domains.png", "training_set/summary.json", "training/adapted_history.json",
                         "training/pseudo_labeled.parquet", "reports/metrics.json"}
    assert json.loads(Path(client.download_artifacts(run.info.run_id, "reports/metrics.json", str(tmp_path)))
                      .read_text()) == {}


# --- the registry: the champion alias moves only through the gate -------------------------------------------------

LABELS = ("negative", "positive")


def _flipped(labels: list[str], rows: range) -> list[str]:
    other = {"negative": "positive", "positive": "negative"}
    return [other[label] if i in rows else label for i, label in enumerate(labels)]


def test_the_gate_judges_the_champion_on_the_challengers_test_set_and_promotes_only_a_real_gain(
        tiny_config, mlflow_store, classifier_dir):
    from mlflow import MlflowClient

    from flows.registry import Evidence, load_registered, register, register_version
    from flows.tracking import RunTracker

    tiny_config.tracking.uri = mlflow_store
    tiny_config.tracking.promotion_margin = 0.01
    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    texts = [f"{adjective} {thing} number {i}" for i, (adjective, thing) in enumerate(
        (a, t) for a in ("sturdy", "flimsy", "sharp", "dull", "handy") for t in ("pan", "knife", "kettle", "pot"))]
    texts = (texts * 10)[:200]
    no_source = pd.DataFrame({"text": [], "label": [], "predicted": []})

    def evidence(truth: list[str], predicted: list[str], source: pd.DataFrame = no_source) -> Evidence:
        return Evidence(LABELS, pd.DataFrame({"text": texts, "label": truth, "predicted": predicted}), source)

    def registered(proof: Evidence, orchestrator_run: str, scores: Scores | None = None):
        tracker = RunTracker.open(tiny_config, {}, {"prefect.flow_run_id": orchestrator_run})
        registration = register_version(tracker, classifier_dir, scores or Scores(0.9), proof, orchestrator_run,
                                        backend="torch")
        tracker.close("FINISHED")
        return tracker, registration

    def alias(name: str) -> int:
        return int(client.get_model_version_by_alias(NAME, name).version)

    _, first = registered(evidence(["positive"] * 200, ["positive"] * 200), "run-1", Scores(0.99))
    assert (first.name, first.version, first.promoted, first.reused) == (NAME, 1, True, False)
    assert first.reason == "first model: no champion yet" and alias("champion") == alias("challenger") == 1

    # new data, on which the champion (which scored 0.99 on its own test set) is wrong on 60 of 200 texts
    champion_says = load_registered(f"models:/{NAME}/1", mlflow_store).predict(
        pd.DataFrame({"text": texts}))["label"].tolist()
    truth = _flipped(champion_says, range(0, 200, 3)[:60])
    source = pd.DataFrame({"text": texts[:50], "label": champion_says[:50], "predicted": champion_says[:50]})
    better_tracker, better = registered(evidence(truth, _flipped(truth, range(10)), source), "run-2")
    assert (better.version, better.promoted) == (2, True)
    assert better.reason.startswith("against champion version 1: target test set (md5 ")
    assert ", n=200): macro-F1 " in better.reason and "source hold-out (md5 " in better.reason
    assert "drop +0.0000 within 0.0200" in better.reason and better.reason.endswith("with p < 0.05")
    assert alias("champion") == alias("challenger") == 2
    assert client.get_model_version_by_alias(NAME, "champion").run_id == better_tracker.run_id

    worse_tracker, worse = registered(evidence(truth, _flipped(truth, range(150))), "run-3")
    assert (worse.version, worse.promoted) == (3, False)
    assert "does not beat it by the margin 0.0100" in worse.reason
    assert (alias("champion"), alias("challenger")) == (2, 3)
    tags = client.get_model_version(NAME, "3").tags
    assert (tags["promotion.promoted"], tags["promotion.reason"]) == ("false", worse.reason)
    assert (tags["target_macro_f1"], tags["prefect.flow_run_id"]) == ("0.900000", "run-3")
    assert client.get_run(worse_tracker.run_id).data.tags["registered_model_version"] == f"{NAME}/3"

    # a challenger that predicts what the champion predicts is no better
    _, equal = registered(evidence(truth, champion_says), "run-4")
    assert not equal.promoted and "difference +0.0000" in equal.reason and alias("champion") == 2

    # a retry of the orchestrator run that registered version 2 reuses it, whatever it scores now
    again = register(better_tracker, Scores(0.99), evidence(truth, truth), "run-2")
    assert (again.version, again.reused, again.promoted) == (2, True, True)
    # a run whose every stage was cached re-validates the version of the same model files
    tracker = RunTracker.open(tiny_config, {}, {"prefect.flow_run_id": "run-5"})
    cached = register_version(tracker, classifier_dir, Scores(0.9), evidence(truth, truth), "run-5", cached=True,
                              backend="torch")
    assert (cached.version, cached.reused) == (4, True) and "every stage was cached" in cached.reason
    assert client.get_model_version(NAME, "4").tags["revalidated.by"] == "run-5"
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 4 and alias("champion") == 2


def test_the_gate_scores_the_champion_from_its_recorded_predictions_when_they_are_of_the_same_texts(
        tiny_config, mlflow_store, classifier_dir, tmp_path):
    from mlflow import MlflowClient

    from flows.registry import Evidence, register_version
    from flows.tracking import RunTracker
    from tasks.atomic import write_csv

    tiny_config.tracking.uri = mlflow_store
    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    texts = [f"=sum(A{i}) a kettle review number {i}" if i % 7 == 0 else f"a kettle review number {i}"
             for i in range(120)]  # texts a spreadsheet would read as formulas are stored quoted: matched all the same
    truth = ["positive" if i % 2 else "negative" for i in range(120)]

    def registered(proof: Evidence, orchestrator_run: str, recorded: pd.DataFrame | None = None):
        tracker = RunTracker.open(tiny_config, {}, {"prefect.flow_run_id": orchestrator_run})
        if recorded is not None:  # what the flow's evaluate stage writes and log_evaluation logs
            reports = tmp_path / orchestrator_run / "reports"
            write_csv(reports / "predictions.csv", recorded)
            client.log_artifact(tracker.run_id, str(reports / "predictions.csv"), "reports")
        registration = register_version(tracker, classifier_dir, Scores(0.9), proof, orchestrator_run,
                                        backend="torch")
        tracker.close("FINISHED")
        return registration

    def evidence(frame_texts: list[str], predicted: list[str]) -> Evidence:
        return Evidence(LABELS, pd.DataFrame({"text": frame_texts, "label": truth, "predicted": predicted}),
                        pd.DataFrame({"text": [], "label": [], "predicted": []}))

    # the champion's own evaluation labelled every test text right (the tiny random model could not)
    recorded = pd.DataFrame({"text": texts, "label": truth, "predicted": truth, "split": "target_test"})
    assert registered(evidence(texts, truth), "run-1", recorded).promoted
    champion_files = local_directory(client.get_model_version(NAME, "1").source)
    shutil.rmtree(champion_files)  # a champion that can no longer be loaded: only its record can score it

    challenger = _flipped(truth, range(10))
    same_texts = registered(evidence(texts, challenger), "run-2")
    assert same_texts.reason.startswith("against champion version 1 (its evaluation's recorded predictions on "
                                        "these texts): target test set (md5 ")
    assert "champion's 1.0000, difference -0.0833" in same_texts.reason and "does not beat it" in same_texts.reason
    assert not same_texts.promoted

    # the same texts in another order are not what the champion's evaluation scored: it must label them now
    reordered = registered(evidence(texts[::-1], challenger), "run-3")
    assert reordered.reason.startswith("the champion could not be scored on this test set (version 1: ")
    assert not reordered.promoted and "recorded" not in reordered.reason


# --- runs and the registry through the flow --------------------------------------------------------------------------

@pytest.mark.reliability
def test_flow_runs_are_runs_and_versions_a_cached_rerun_adds_none_and_the_gate_moves_the_aliases(
        prefect_harness, tiny_config, mlflow_store, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    from flows.adaptation import adaptation_flow
    from flows.cli import main

    def upload(*_args):  # the store is on this file system: the model is saved in place, never copied into it
        raise AssertionError("the logged model was copied into a local artifact store")

    monkeypatch.setattr(MlflowClient, "log_model_artifacts", upload)
    tiny_config.tracking.uri = mlflow_store
    tiny_config.tracking.promotion_margin = 2.0  # no macro-F1 beats another by 2: the first model stays champion
    tiny_config.strategy.joint_pseudo_labeling = False  # one training round: its train.epochs are the steps below
    tiny_config.inference.backend = "onnx-int8"  # chosen: the logged model carries its int8 graph
    reseeded = tiny_config.model_copy(deep=True)
    reseeded.train.seed += 1  # trains again: a different model
    states = [adaptation_flow(config, return_state=True) for config in (tiny_config, tiny_config, reseeded)]
    summaries = [state.result() for state in states]
    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    runs = client.search_runs([client.get_experiment_by_name("adaptflow").experiment_id], order_by=["start_time"])
    assert [run.info.status for run in runs] == ["FINISHED"] * 3
    # the second run was cached end to end: it re-validated version 1 and registered nothing
    assert summaries[1]["registered"]["version"] == 1 and summaries[1]["registered"]["reused"]
    assert "every stage was cached" in summaries[1]["registered"]["reason"]
    assert runs[1].data.tags["registered_model_version"] == f"{NAME}/1"
    run = runs[2]
    assert run.info.run_id == summaries[2]["mlflow_run_id"]

    # params, tags, metrics (per-epoch as steps), inputs and artifacts
    assert run.data.params["train.epochs"] == "2" and run.data.params["model.max_length"] == "48"
    assert run.data.tags["branch"] == summaries[2]["branch"]
    assert "MMD²" in run.data.tags["decision.rationale"]
    for key in ("target.accuracy", "target.macro_f1", "baseline.accuracy", "gain.accuracy", "shift.mmd2",
                "shift.proxy_a_distance", "validation.errors", "rows.target_test"):
        assert key in run.data.metrics, key
    losses = client.get_metric_history(run.info.run_id, "adapted.train_loss")
    assert sorted(metric.step for metric in losses) == [1, 2]
    per_step = client.get_metric_history(run.info.run_id, "adapted.step.train_loss")  # step = global step
    steps = sorted(metric.step for metric in per_step)
    assert len(steps) > 2 and steps == list(range(1, len(steps) + 1))
    assert len(client.get_metric_history(run.info.run_id, "adapted.step.learning_rate")) == len(steps)
    assert {dataset.dataset.name for dataset in run.inputs.dataset_inputs} >= {"source_train", "target_test"}
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | {
        a.path for folder in ("reports", "similarity", "validation") for a in client.list_artifacts(run.info.run_id,
                                                                                                     folder)}
    for path in ("report.md", "reports/confusion_matrix_adapted.png", "reports/training_curves.png",
                 "reports/metrics.json", "similarity/report.json", "similarity/domains.png",
                 "validation/summary.json", "validation/data_docs"):
        assert path in artifacts, path
    assert "model" not in artifacts  # the model's files live once, in the run's logged model
    logged = client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id='{run.info.run_id}'")
    assert [(model.name, str(model.status)) for model in logged] == [("model", "READY")]
    place = local_directory(logged[0].artifact_location)  # saved beside its place and renamed into it
    assert (place / "MLmodel").is_file() and (place / "artifacts" / "model.int8.onnx").is_file()
    assert list(place.parent.glob(".adaptflow-model-*")) == []
    report = Path(client.download_artifacts(run.info.run_id, "report.md", str(Path(mlflow_store[10:]).parent)))
    assert "```mermaid" in report.read_text() and "class A,B," in report.read_text()

    # the registry: versions 1 and 2 (the cached run added none); the gate kept the first as champion
    versions = sorted(client.search_model_versions(f"name = '{NAME}'"), key=lambda v: int(v.version))
    assert [int(v.version) for v in versions] == [1, 2]
    assert int(client.get_model_version_by_alias(NAME, "challenger").version) == 2
    assert int(client.get_model_version_by_alias(NAME, "champion").version) == 1
    assert versions[0].tags["promotion.reason"].startswith("first model")
    assert versions[0].tags["revalidated.by"] == str(states[1].state_details.flow_run_id)
    assert versions[1].tags["promotion.promoted"] == "false" and "by the margin 2.0000" in versions[1].tags[
        "promotion.reason"]
    # the same test texts as the champion's evaluation: the gate reads its recorded predictions (their macro-F1 is
    # the one version 1 was registered with) instead of loading it to label them again
    assert versions[1].tags["promotion.reason"].startswith(
        "against champion version 1 (its evaluation's recorded predictions on these texts): target test set (md5 ")
    assert f"champion's {float(versions[0].tags['target_macro_f1']):.4f}," in versions[1].tags["promotion.reason"]
    assert versions[1].tags["promotion.reason"] == summaries[2]["registered"]["reason"]

    # from a model version alone: the data hashes, the git commit and the Prefect flow run it came from
    version = client.get_model_version(NAME, "2")
    origin = client.get_run(version.run_id).data.tags
    assert origin["data.md5.source"] == dvc_md5(tiny_config.data.source) == version.tags["data.md5.source"]
    assert origin["data.md5.target"] == dvc_md5(tiny_config.data.target)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    assert origin["git.commit"] == version.tags["git.commit"] == head
    assert origin["prefect.flow_run_id"] == version.tags["prefect.flow_run_id"] == str(
        states[2].state_details.flow_run_id)

    # the registered model serves labels and scores, from Python and from `adaptflow predict`
    mlflow.set_tracking_uri(mlflow_store)
    mlflow.set_registry_uri(mlflow_store)  # not an earlier test's registry (models:/ resolves there)
    served = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(pd.DataFrame({"text": ["a fine pan"]}))
    assert list(served.columns) == ["label", "score"] and served["label"][0] in ("negative", "positive")
    texts = tiny_config.output.dir / "texts.csv"
    pd.DataFrame({"text": ["sturdy and sharp", "broke after a week"]}).to_csv(texts, index=False)
    labelled = tiny_config.output.dir / "labelled.csv"
    assert main(["predict", "--model", f"models:/{NAME}@champion", "--input", str(texts), "--output", str(labelled),
                 "--set", f"tracking.uri={mlflow_store}"]) == 0
    predicted = pd.read_csv(labelled)
    assert list(predicted.columns) == ["text", "label", "score"] and len(predicted) == 2
    assert list(mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(
        pd.DataFrame({"text": ["a fine pan"]})).columns) == ["label", "score"]  # the run's logged model
    pd.DataFrame({"id": [1, 2], "text": ["sturdy and sharp", ""]}).to_csv(texts, index=False)
    from flows.predicting import predict_file
    from tasks.errors import DataError

    with pytest.raises(DataError, match=r"texts.csv: row 1: 'text' is empty; send a non-empty string \(rows counted"):
        predict_file(f"models:/{NAME}@champion", texts, None, tiny_config)

    # a retry of the same flow run reuses its version instead of registering a second one
    from flows.registry import Evidence, register
    from flows.tracking import RunTracker

    tracker = RunTracker(client, run.info.run_id, tiny_config, mlflow_store)
    empty = pd.DataFrame({"text": [], "label": [], "predicted": []})
    again = register(tracker, Scores(0.99), Evidence(LABELS, empty, empty), str(states[2].state_details.flow_run_id))
    assert again.reused and again.version == 2
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 2


def test_a_logged_model_is_written_in_place_only_in_a_store_on_this_machines_file_system(tmp_path):
    assert local_directory(f"file://{tmp_path}/models/m-1/artifacts") == tmp_path / "models" / "m-1" / "artifacts"
    assert local_directory(f"{tmp_path}/models/m-1/artifacts") == tmp_path / "models" / "m-1" / "artifacts"
    for remote in ("mlflow-artifacts:/1/models/m-1/artifacts", "s3://bucket/1/models/m-1/artifacts",
                   "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1"):
        assert local_directory(remote) is None, remote


@pytest.mark.reliability
def test_a_failed_flow_ends_its_run_failed_and_registers_nothing(prefect_harness, tiny_config, mlflow_store):
    from mlflow import MlflowClient

    from flows.adaptation import adaptation_flow
    from tests.conftest import SAMPLE

    tiny_config.tracking.uri = mlflow_store
    kitchen = SAMPLE / "kitchen.csv"  # the test set is the source: a leak, an error-level check
    tiny_config.data = tiny_config.data.model_copy(update={"source": kitchen, "target": None, "target_test": kitchen})
    assert adaptation_flow(tiny_config, return_state=True).is_failed()
    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    (run,) = client.search_runs([client.get_experiment_by_name("adaptflow").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["validation.status"] == "failed" and run.data.metrics["validation.errors"] >= 1
    assert client.search_model_versions(f"name = '{NAME}'") == []


@pytest.mark.reliability
def test_an_unreachable_server_fails_the_flow_before_training_naming_the_uri(prefect_harness, tiny_config):
    from flows.adaptation import adaptation_flow
    from tasks.errors import TrackingError

    uri = f"http://127.0.0.1:{free_port()}"
    tiny_config.tracking.uri = uri
    state = adaptation_flow(tiny_config, return_state=True)
    with pytest.raises(TrackingError, match=f"MLflow tracking server {uri} is unreachable"):
        state.result()
    assert not tiny_config.output.dir.exists()


@pytest.mark.reliability
def test_runs_left_running_by_a_killed_process_are_ended_killed_on_the_next_start(tiny_config, mlflow_store):
    from mlflow import MlflowClient

    from flows.tracking import RunTracker

    tiny_config.tracking.uri = mlflow_store
    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    experiment = client.create_experiment("adaptflow")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = client.create_run(experiment, tags={"adaptflow.host": socket.gethostname(),
                                                 "adaptflow.pid": str(dead.pid)})
    alive = client.create_run(experiment, tags={"adaptflow.host": socket.gethostname(),
                                                "adaptflow.pid": str(os.getpid())})
    tracker = RunTracker.open(tiny_config, {}, {"adaptflow.trigger": "test"})
    assert client.get_run(orphan.info.run_id).info.status == "KILLED"
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"  # its process is this one, still alive
    tracker.close("FINISHED")


def test_interrupts_end_runs_killed_and_errors_failed():
    from flows.stages.register import run_status

    assert run_status(KeyboardInterrupt()) == "KILLED"
    assert run_status(ValueError("boom")) == "FAILED"


def test_the_dvc_register_stage_logs_one_run_from_the_stage_outputs(tiny_config, mlflow_store):
    from mlflow import MlflowClient

    from flows.stage_registry import STAGE_NAMES, run_stage

    tiny_config.tracking.uri = mlflow_store
    tiny_config.evaluation.baseline = False
    for name in STAGE_NAMES[:-1]:
        if name != "train-baseline":
            run_stage(tiny_config, name)
    registration = run_stage(tiny_config, "register")
    assert registration.version == 1 and registration.promoted
    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    (run,) = client.search_runs([client.get_experiment_by_name("adaptflow").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["adaptflow.trigger"] == "dvc repro"
    assert "target.macro_f1" in run.data.metrics and "shift.mmd2" in run.data.metrics
    assert (tiny_config.output.dir / "registry" / "registration.json").is_file()


# --- a real MLflow server --------------------------------------------------------------------------------------------

class MlflowServer:
    """`mlflow server` with a SQLite backend and a local artifact root, on 127.0.0.1 and a fixed free port; it can
    be stopped and started again on the same port and store."""

    def __init__(self, directory) -> None:
        self.directory = directory
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers",
             "1", "--backend-store-uri", f"sqlite:///{self.directory / 'server.db'}",
             "--artifacts-destination", str(self.directory / "server-artifacts")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    pytest.fail(f"mlflow server exited: {(self.directory / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        pytest.fail("mlflow server did not start within 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def server(tmp_path):
    running = MlflowServer(tmp_path)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def mlflow_server(server) -> str:
    return server.uri


@pytest.mark.integration
@pytest.mark.reliability
def test_a_tracking_server_restart_within_the_retry_window_loses_no_metric_and_a_long_outage_fails_loudly(
        server, tiny_config, tmp_path, monkeypatch):
    import json
    import threading

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from flows.layout import Layout
    from flows.tracking import RunTracker
    from tasks.results import TrainSummary

    tiny_config.tracking.uri = server.uri
    layout = Layout(tmp_path / "outputs")
    history = [{"epoch": epoch, "train_loss": 1.0 / epoch, "val_accuracy": 0.5 + epoch / 100}
               for epoch in range(1, 51)]
    trained = TrainSummary("adapted", str(layout.model("adapted")), history, 50, False, 100)
    layout.history("adapted").parent.mkdir(parents=True)
    layout.history("adapted").write_text(json.dumps(trained.to_dict()))
    tracker = RunTracker.open(tiny_config, {}, {"adaptflow.trigger": "test"})

    server.stop()  # down mid-run, back within the client's retry window
    restart = threading.Timer(3.0, server.start)
    restart.start()
    tracker.log_training(layout, trained)
    restart.join()
    client = MlflowClient(server.uri)
    for key in ("adapted.train_loss", "adapted.val_accuracy"):
        assert len(client.get_metric_history(tracker.run_id, key)) == 50 == tracker.logged_steps[key]

    server.stop()  # down for longer than the retries wait: an error, not a silent drop
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    with pytest.raises((MlflowException, OSError)):
        tracker.log_training(layout, trained)


@pytest.mark.integration
def test_the_flow_against_a_real_mlflow_server_and_its_run_page_in_a_browser(prefect_harness, tiny_config,
                                                                              mlflow_server, chromium):
    from mlflow import MlflowClient

    from flows.adaptation import adaptation_flow
    from tests.conftest import REPO, browser_page

    tiny_config.tracking.uri = mlflow_server
    summary = adaptation_flow(tiny_config)
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["target.accuracy"] == pytest.approx(summary["metrics"]["accuracy"])
    assert "model" not in {a.path for a in client.list_artifacts(run.info.run_id)}  # once: the logged model
    assert client.get_model_version_by_alias(NAME, "champion").run_id == run.info.run_id
    assert int(client.get_model_version_by_alias(NAME, "challenger").version) == 1
    # what the MLflow UI shows: the model-training view, the run report as the description, where it came from
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.data.tags["mlflow.note.content"].startswith("# adaptflow run")
    assert run.data.tags["mlflow.source.name"] == "adaptflow (prefect)"
    assert run.data.tags["mlflow.source.git.commit"] == run.data.tags["git.commit"]
    (output,) = run.outputs.model_outputs  # the run page's "Logged models"
    logged = client.get_logged_model(output.model_id)
    assert (logged.name, logged.source_run_id, str(logged.status)) == ("model", run.info.run_id, "READY")
    assert {metric.key: metric.value for metric in logged.metrics}["target.macro_f1"] == pytest.approx(
        summary["metrics"]["macro_f1"])
    assert client.get_model_version(NAME, "1").source == logged.artifact_location  # the version is that model

    shots = REPO / "test-artifacts"
    shots.mkdir(exist_ok=True)
    with chromium() as playwright:
        browser, page = browser_page(playwright, 1600, 1200)
        # the link the run report gives opens the run in the model-training view
        assert summary["mlflow_run_url"] == (f"{mlflow_server}/#/experiments/{run.info.experiment_id}/runs/"
                                             f"{run.info.run_id}?workflowType=machine_learning")
        page.goto(summary["mlflow_run_url"])
        page.get_by_role("link", name="Model registry").first.wait_for()  # the model-training navigation
        assert page.get_by_role("link", name="Evaluation runs").count() == 0  # not the GenAI one
        page.get_by_text("adaptflow run", exact=True).first.wait_for()  # the description's heading, rendered
        page.get_by_text(f"{summary['branch']}", exact=False).first.wait_for()
        page.get_by_role("link", name="model", exact=True).first.wait_for()  # listed under Logged models
        page.wait_for_timeout(2000)
        page.screenshot(path=str(shots / "mlflow-run-page.png"), full_page=True)
        page.get_by_role("tab", name="Model metrics").first.click()
        page.get_by_text("adapted.step.train_loss", exact=True).first.wait_for()  # the per-step loss chart
        page.wait_for_timeout(3000)
        page.screenshot(path=str(shots / "mlflow-run-metrics.png"), full_page=True)
        page.goto(f"{mlflow_server}/#/models/{NAME}/versions/1")
        page.get_by_text("promotion.reason").first.wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(shots / "mlflow-model-version-page.png"), full_page=True)
        browser.close()


@pytest.mark.reliability
def test_registering_while_another_run_creates_the_registered_model_adds_a_version_to_it(tiny_config, tmp_path,
                                                                                        monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from flows.registry import Evidence, register
    from flows.tracking import RunTracker

    store = f"sqlite:///{tmp_path / 'race.db'}"  # a registry of its own: no version from another test
    tiny_config.tracking.uri = store
    client = MlflowClient(store, registry_uri=store)
    run = client.create_run(client.create_experiment("race"))
    real_get, lookups = client.get_registered_model, []

    def created_meanwhile(name):  # the first lookup misses; a run beside this one creates the model right after it
        lookups.append(name)
        if len(lookups) > 1:
            return real_get(name)
        client.create_registered_model(name)
        raise MlflowException(f"Registered Model with name={name} not found")

    monkeypatch.setattr(client, "get_registered_model", created_meanwhile)
    empty = pd.DataFrame({"text": [], "label": [], "predicted": []})
    registered = register(RunTracker(client, run.info.run_id, tiny_config, store), Scores(0.9),
                          Evidence(LABELS, empty, empty), "flow-run-1")
    assert lookups and registered.version == 1
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 1
