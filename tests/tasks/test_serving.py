"""The registered model, portable: it loads and predicts where adaptflow is not installed, and `mlflow models serve`
answers HTTP requests, refusing bad texts with the row named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from tasks.serving import checked_texts
from tests.conftest import free_port

NAME = "adaptflow-classifier"


# --- what a request may hold ----------------------------------------------------------------------------------------

def test_the_texts_of_a_request_are_its_text_column():
    assert checked_texts(pd.DataFrame({"id": [1, 2], "text": ["a fine pan", "broke"]})) == ["a fine pan", "broke"]
    assert checked_texts(["a fine pan"]) == ["a fine pan"]


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"review": ["a fine pan"]}), "the input has the columns ['review']; send a 'text' column"),
    (pd.DataFrame({"text": ["fine", None]}), "row 1: 'text' is null; send a string"),
    (pd.DataFrame({"text": ["fine", float("nan")]}), "row 1: 'text' is null; send a string"),
    (pd.DataFrame({"text": ["  ", "fine"]}), "row 0: 'text' is empty; send a non-empty string"),
    (pd.DataFrame({"text": ["fine", "ok", 5]}), "row 2: 'text' is int 5; send a string"),
])
def test_a_missing_column_or_a_text_that_is_no_text_is_refused_with_its_row(frame, message):
    with pytest.raises(MlflowException, match=r"^" + message.replace("[", r"\[").replace("]", r"\]") + "$") as error:
        checked_texts(frame)
    assert error.value.get_http_status_code() == 400


# --- the registered model, where adaptflow is not installed ---------------------------------------------------------

@pytest.fixture(scope="module")
def registered_store(tmp_path_factory, tiny_model_dir, classifier_dir) -> str:
    """A registry holding one version of the tiny classifier, alias champion, logged as the flow logs it by an
    engine that trains in fp32, where `inference.backend: auto` means int8 ONNX."""
    return _register(tmp_path_factory.mktemp("served"), tiny_model_dir, classifier_dir)


def _register(root: Path, foundation: Path, model_dir: Path, precision: str = "fp32",
              evaluated_by: str = "onnx-int8", int8_recheck: float = 0.10) -> str:
    """`evaluated_by`: the backend that labelled the evaluation's test texts (`EvaluationReport.backend`)."""
    from flows.registry import Evidence, register_version
    from flows.tracking import RunTracker
    from tasks.config import build_config
    from tasks.promotion import Scores

    store = f"sqlite:///{root / 'mlruns.db'}"
    config = build_config({"model": {"name_or_path": str(foundation), "max_length": 32},
                           "output": {"dir": str(root / "outputs")}, "tracking": {"uri": store},
                           "train": {"precision": precision},
                           "inference": {"backend": "auto", "cache_dir": str(root / "onnx"),
                                         "int8_recheck": int8_recheck}})
    tracker = RunTracker.open(config, {}, {})
    frame = pd.DataFrame({"text": ["a fine pan"], "label": ["positive"], "predicted": ["positive"]})
    registration = register_version(tracker, model_dir, Scores(0.7, 0.8),
                                    Evidence(("negative", "positive"), frame, frame.iloc[:0]), backend=evaluated_by)
    tracker.close("FINISHED")
    assert (registration.version, registration.promoted) == (1, True)
    return store


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A Python that has this environment's packages but not adaptflow: a venv whose one extra path entry is this
    environment's site-packages, read as a plain directory, so the editable install's import hook never runs."""
    env = tmp_path_factory.mktemp("bare-env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "installed-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _bare_env(store: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV") and not key.startswith("MLFLOW_")}  # mlflow.set_*_uri set some
    return {**env, "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store}


def test_the_champion_loads_and_predicts_where_adaptflow_cannot_be_imported(registered_store, bare_python, tmp_path):
    script = (
        "import importlib.util, sys\n"
        "for package in ('tasks', 'flows', 'deployments'):\n"
        "    assert importlib.util.find_spec(package) is None, package\n"
        "import mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model('models:/{NAME}@champion')\n"
        "print(type(model.unwrap_python_model().classify).__name__)\n"
        "print(model.predict(pd.DataFrame({'text': ['a fine pan', 'it broke']})).to_json(orient='records'))\n")
    done = subprocess.run([str(bare_python), "-c", script], cwd=tmp_path, env=_bare_env(registered_store),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    labeller, printed = done.stdout.strip().splitlines()[-2:]
    assert labeller == "OnnxLabeller"  # on a CPU the int8 ONNX export logged beside the weights labels the texts
    predicted = json.loads(printed)
    assert len(predicted) == 2
    assert all(row["label"] in ("negative", "positive") and 0.5 <= row["score"] <= 1 for row in predicted)


def test_where_the_evaluation_ran_in_torch_the_model_is_logged_without_an_onnx_export_and_served_in_bf16(
        tiny_model_dir, classifier_dir, tmp_path):
    from flows.registry import load_registered

    store = _register(tmp_path, tiny_model_dir, classifier_dir, precision="bf16", evaluated_by="torch")
    assert list(tmp_path.rglob("*.onnx")) == []
    assert list((tmp_path / "mlartifacts").rglob("MLmodel"))  # the model itself was logged
    served = load_registered(f"models:/{NAME}@champion", store).unwrap_python_model()
    assert (type(served.classify).__name__, served.bf16) == ("TextClassificationPipeline", True)


def test_the_fp32_engines_champion_carries_its_int8_export_and_the_fp32_graph_that_rechecks_its_close_calls(
        registered_store):
    root = Path(registered_store.removeprefix("sqlite:///")).parent
    assert sorted(path.name for path in (root / "mlartifacts").rglob("*.onnx")) == ["model.int8.onnx", "model.onnx"]


@pytest.mark.parametrize("batch_size", [64, 24])  # the logged evaluation.batch_size, and one not a multiple of 16
def test_the_served_int8_model_labels_in_the_evaluations_calls_and_gives_its_scores(registered_store, classifier_dir,
                                                                                      batch_size):
    import mlflow
    import numpy as np
    import torch

    from tasks.inference import predict
    from tasks.models import load_tokenizer
    from tasks.onnx_inference import INT8_BATCH, load_for_inference

    root = Path(registered_store.removeprefix("sqlite:///")).parent
    words = ["fine", "broken", "lid", "pan", "hot"]  # texts of equal length with other words: ties across calls
    texts = [" ".join([words[i % 5]] * (4 + i % 9)) for i in range(60)] + [" ".join(["word"] * n) for n in (30, 2)]
    mlflow.set_tracking_uri(registered_store)
    mlflow.set_registry_uri(registered_store)
    logged = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    settings = logged.model_config
    assert (settings["int8_batch_size"], settings["batch_size"], settings["int8_recheck"]) == (INT8_BATCH, 64, 0.10)
    tokenizer = load_tokenizer(str(classifier_dir))
    int8 = predict(load_for_inference(classifier_dir, None, "onnx-int8", root / "onnx", torch.device("cpu"), 0),
                   tokenizer, texts, 32).probabilities
    margin = float(np.median(np.abs(int8[:, 1] - int8[:, 0])))  # half the texts are close calls, re-checked in fp32
    served = mlflow.pyfunc.load_model(f"models:/{NAME}@champion",
                                      model_config={**settings, "batch_size": batch_size, "int8_recheck": margin})
    labeller = served.unwrap_python_model().classify
    assert (type(labeller).__name__, labeller.texts_per_run) == ("OnnxLabeller", INT8_BATCH)
    assert labeller.recheck is not None
    answered = served.predict(pd.DataFrame({"text": texts}))
    model = load_for_inference(classifier_dir, None, "onnx-int8", root / "onnx", torch.device("cpu"), margin)
    evaluated = predict(model, tokenizer, texts, 32, batch_size=batch_size)
    assert 0 < model.rechecked < len(texts)
    assert answered["label"].tolist() == evaluated.labels
    assert np.allclose(answered["score"].to_numpy(), evaluated.scores, rtol=0, atol=1e-6)


def test_the_logged_model_carries_the_graph_the_evaluation_used_not_the_registering_machines_choice(
        tiny_model_dir, classifier_dir, tmp_path):
    # the registering process's settings resolve `auto` to torch (bf16), but the evaluate task labelled the test
    # texts in int8 ONNX (another machine, or `inference.backend: onnx-int8` there): the int8 graph is shipped
    store = _register(tmp_path, tiny_model_dir, classifier_dir, precision="bf16", evaluated_by="onnx-int8")
    root = Path(store.removeprefix("sqlite:///")).parent
    assert sorted(path.name for path in (root / "mlartifacts").rglob("*.onnx")) == ["model.int8.onnx", "model.onnx"]


def test_without_a_recheck_margin_the_logged_model_carries_the_int8_graph_alone_and_serves_with_it_alone(
        tiny_model_dir, classifier_dir, tmp_path):
    from flows.registry import load_registered

    store = _register(tmp_path, tiny_model_dir, classifier_dir, int8_recheck=0.0)
    root = Path(store.removeprefix("sqlite:///")).parent
    assert [path.name for path in (root / "mlartifacts").rglob("*.onnx")] == ["model.int8.onnx"]
    served = load_registered(f"models:/{NAME}@champion", store).unwrap_python_model().classify
    assert (type(served).__name__, served.recheck) == ("OnnxLabeller", None)


def test_a_champion_that_pools_by_the_mean_is_served_the_same_by_torch_and_onnx_without_adaptflow(
        sentence_model_dir, mean_classifier_dir, bare_python, tmp_path):
    from tasks.inference import predict_probabilities
    from tasks.models import load_classifier_dir, load_tokenizer

    store = _register(tmp_path / "served", sentence_model_dir, mean_classifier_dir)
    texts = ["a fine pan", "it broke after a week and the lid never fit"]
    script = (
        "import importlib.util, json, mlflow, pandas as pd\n"
        "assert importlib.util.find_spec('tasks') is None\n"
        "for backend in ('torch', 'auto'):\n"
        "    settings = {'backend': backend, 'max_length': 32, 'batch_size': 64, 'precision': 'fp32'}\n"
        f"    model = mlflow.pyfunc.load_model('models:/{NAME}@champion', model_config=settings)\n"
        f"    frame = model.predict(pd.DataFrame({{'text': {texts!r}}}))\n"
        "    print(type(model.unwrap_python_model().classify).__name__, json.dumps(frame.to_dict('list')))\n")
    done = subprocess.run([str(bare_python), "-c", script], cwd=tmp_path, env=_bare_env(store),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    served = dict(line.split(" ", 1) for line in done.stdout.strip().splitlines()[-2:])
    assert sorted(served) == ["OnnxLabeller", "TextClassificationPipeline"]
    expected = predict_probabilities(load_classifier_dir(str(mean_classifier_dir)),
                                     load_tokenizer(str(mean_classifier_dir)), texts, 32).max(axis=1)
    pipeline_scores = json.loads(served["TextClassificationPipeline"])["score"]
    onnx_scores = json.loads(served["OnnxLabeller"])["score"]
    assert max(abs(a - b) for a, b in zip(pipeline_scores, expected, strict=True)) < 1e-4
    assert max(abs(a - b) for a, b in zip(onnx_scores, expected, strict=True)) < 0.05


def test_mlflow_models_serve_labels_texts_and_answers_400_naming_the_row(registered_store, bare_python, tmp_path):
    port = free_port()
    bin_dir = str(bare_python.parent)
    env = {**_bare_env(registered_store), "PATH": bin_dir + os.pathsep + str(Path(sys.executable).parent)
           + os.pathsep + os.environ.get("PATH", "")}
    server = subprocess.Popen([str(bare_python), "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion",
                               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_until_healthy(port, server)

        status, body = _post(port, {"dataframe_split": {"columns": ["text"], "data": [["a fine pan"], ["it broke"]]}})
        assert status == 200, body
        predictions = body["predictions"]
        assert [sorted(row) for row in predictions] == [["label", "score"]] * 2
        assert all(row["label"] in ("negative", "positive") for row in predictions)
        status, body = _post(port, {"inputs": {"text": ["a fine pan"]}})
        assert status == 200 and body["predictions"][0]["label"] in ("negative", "positive"), body

        for payload, message in [
            ({"dataframe_split": {"columns": ["text"], "data": [["fine"], [None]]}}, "row 1: 'text' is null"),
            ({"dataframe_split": {"columns": ["text"], "data": [[""]]}}, "row 0: 'text' is empty"),
            ({"dataframe_split": {"columns": ["text"], "data": [["fine"], [5]]}}, "row 1: 'text' is int 5"),
            ({"dataframe_split": {"columns": ["review"], "data": [["fine"]]}}, "text"),
        ]:
            status, body = _post(port, payload)
            assert status == 400, (payload, body)
            assert message in body["message"], (payload, body)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _post(port: int, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", json.dumps(payload).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _wait_until_healthy(port: int, server: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow models serve exited {server.returncode}: {server.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail("mlflow models serve did not answer /health in time")
