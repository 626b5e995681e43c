"""Faults never leave lies behind: a diverging run ends FAILED with nothing registered, and no secret from the
environment reaches MLflow's params or tags."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.reliability

NAME = "adaptflow-classifier"


def test_a_nan_loss_fails_the_flow_at_once_ends_the_run_failed_and_registers_nothing(prefect_harness, tiny_config,
                                                                                    mlflow_store):
    from mlflow import MlflowClient

    from flows.adaptation import adaptation_flow
    from tasks.errors import TrainingError

    tiny_config.tracking.uri = mlflow_store
    tiny_config.train.learning_rate = 1e6
    tiny_config.train.max_grad_norm = 1e12
    state = adaptation_flow(tiny_config, return_state=True)
    with pytest.raises(TrainingError, match="loss"):
        state.result()
    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    (run,) = client.search_runs([client.get_experiment_by_name("adaptflow").experiment_id])
    assert run.info.status == "FAILED"
    assert client.search_model_versions(f"name = '{NAME}'") == []
    assert not (tiny_config.output.dir / "reports").exists()


def test_no_secret_from_the_environment_reaches_mlflow_params_or_tags(prefect_harness, tiny_config, mlflow_store,
                                                                     monkeypatch):
    import os
    import re

    from mlflow import MlflowClient

    from flows.adaptation import adaptation_flow

    monkeypatch.setenv("ADAPTFLOW_TEST_API_TOKEN", "tok-3f9c2a71d4")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-9d8e7f6a5b")
    tiny_config.tracking.uri = mlflow_store
    tiny_config.evaluation.baseline = False
    summary = adaptation_flow(tiny_config)
    run = MlflowClient(mlflow_store).get_run(summary["mlflow_run_id"])
    logged = " ".join([*run.data.params.values(), *run.data.tags.values()])
    secrets = [value for name, value in os.environ.items()
               if re.search(r"(?i)secret|token|passw|api_?key|credential", name) and len(value) >= 8]
    assert "tok-3f9c2a71d4" in secrets and "aws-9d8e7f6a5b" in secrets
    assert [value for value in secrets if value in logged] == []


def test_kill_9_during_training_then_run_again_resumes_to_the_same_result(prefect_harness, tiny_config,
                                                                          mlflow_store, tmp_path):
    """The killed attempt's MLflow run ends KILLED (reconciled by the next start), it registers nothing, and the
    next run resumes from the last complete checkpoint to the metrics of an uninterrupted run."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from mlflow import MlflowClient
    from prefect.settings import PREFECT_API_URL

    from tasks.config import dump_config

    tiny_config.tracking.uri = mlflow_store
    tiny_config.train.epochs = 4
    tiny_config.train.early_stopping_patience = 0
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    adaptflow = str(Path(sys.executable).with_name("adaptflow"))
    # both runs in fresh processes, as a user compares them (a tiny model at lr 1e-2 amplifies the last bit of any
    # difference in a long-lived process's state into a different accuracy)
    whole = tmp_path / "uninterrupted.yaml"
    whole.write_text(dump_config(tiny_config.model_copy(update={"output": tiny_config.output.model_copy(
        update={"dir": tmp_path / "uninterrupted"})}, deep=True)))
    first = subprocess.run([adaptflow, "run", "--params", str(whole), "--json"], env=env, check=False,
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    uninterrupted = json.loads(first.stdout.strip().splitlines()[-1])

    params = tmp_path / "params.yaml"
    params.write_text(dump_config(tiny_config))
    command = [adaptflow, "run", "--params", str(params), "--json"]
    victim = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    checkpoints = tiny_config.output.dir / "checkpoints"
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("*/epoch-1/state.json")):
        assert victim.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    experiment = client.get_experiment_by_name("adaptflow").experiment_id
    killed = [run for run in client.search_runs([experiment]) if run.data.tags.get("adaptflow.pid") == str(victim.pid)]
    assert [run.info.status for run in killed] == ["RUNNING"]  # nobody could end it: the process is gone
    versions_before = len(client.search_model_versions("name = 'adaptflow-classifier'"))

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = json.loads(done.stdout.strip().splitlines()[-1])
    assert client.get_run(killed[0].info.run_id).info.status == "KILLED"
    history = json.loads((tiny_config.output.dir / "models" / "baseline_history.json").read_text())
    assert history["resumed_from_epoch"] >= 1
    assert resumed["metrics"]["accuracy"] == uninterrupted["metrics"]["accuracy"]
    assert resumed["baseline_metrics"] == uninterrupted["baseline_metrics"]
    assert len(client.search_model_versions("name = 'adaptflow-classifier'")) == versions_before + 1


def _peak_rss_mb(args: list[str], cwd) -> tuple[int, float, str]:
    """Run `adaptflow ARGS` in a fresh interpreter; (exit code, its own peak RSS in MB, stderr)."""
    import subprocess
    import sys

    code = ("import resource, sys\nfrom flows.cli import main\nrc = main(sys.argv[1:])\n"
            "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(rc)\n")
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    peak = next(line for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB")).split()[1]
    return done.returncode, int(peak) / 1024, done.stderr


def test_a_1_mb_text_and_texts_10x_the_max_length_are_truncated_in_bounded_memory(tiny_config, tmp_path):
    import pandas as pd

    from flows.stage_registry import run_stage
    from tests.conftest import REPO

    tiny_config.strategy.branch = "joint_training"
    for name in ("validate", "similarity", "prepare", "train"):
        run_stage(tiny_config, name)
    model = str(tiny_config.output.dir / "models" / "adapted")
    words = ["the", "blender", "is", "great", "and", "the", "lid", "fits"]
    short = pd.DataFrame({"text": [" ".join(words)] * 200})
    huge = " ".join(words[i % len(words)] for i in range(220_000))  # ~1 MB of text
    long = pd.DataFrame({"text": [huge] + [" ".join(words * 60)] * 199})  # 1 MB + texts ~10x max_length 48
    assert len(huge.encode()) >= 1_000_000
    peaks = {}
    for name, frame in (("short", short), ("long", long)):
        rows = tmp_path / f"{name}.csv"
        frame.to_csv(rows, index=False)
        output = tmp_path / f"{name}-labelled.csv"
        code, peaks[name], err = _peak_rss_mb(["predict", "--model", model, "--input", str(rows), "--output",
                                               str(output), "--set", "model.max_length=48"], REPO)
        assert code == 0, err[-2000:]
        assert len(pd.read_csv(output)) == 200
    print(f"peak RSS: short texts {peaks['short']:.0f} MB, 1 MB + 10x max_length texts {peaks['long']:.0f} MB")
    assert peaks["long"] - peaks["short"] < 300  # the long texts are cut at max_length, not held as tokens


def test_two_flow_runs_at_once_share_the_stores_and_the_embedding_cache_and_both_finish(prefect_harness, tiny_config,
                                                                                       mlflow_store, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    from mlflow import MlflowClient
    from prefect.settings import PREFECT_API_URL

    from tasks.config import dump_config

    tiny_config.tracking.uri = mlflow_store
    commands = []
    for name in ("first", "second"):
        config = tiny_config.model_copy(deep=True)
        config.output.dir = tmp_path / name  # the embedding cache and both stores stay shared
        params = tmp_path / f"{name}.yaml"
        params.write_text(dump_config(config))
        commands.append([str(Path(sys.executable).with_name("adaptflow")), "run", "--params", str(params), "--json"])
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for command in commands]
    results = [run.communicate(timeout=600) for run in runs]
    for run, (out, err) in zip(runs, results, strict=True):
        assert run.returncode == 0, err[-3000:]
        assert "database is locked" not in err
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    assert {client.get_run(s["mlflow_run_id"]).info.status for s in summaries} == {"FINISHED"}
    assert sorted(s["registered"]["version"] for s in summaries) == [1, 2]
    shards = list(Path(tiny_config.similarity.cache_dir).rglob("*.npz"))
    assert shards and all(np.load(shard, allow_pickle=False).files for shard in shards)
    assert not list(Path(tiny_config.similarity.cache_dir).rglob("*.tmp*"))


def test_a_stage_output_symlinked_outside_the_output_root_is_refused(tiny_config, tmp_path):
    from flows.layout import layout_of
    from flows.stage_registry import run_stage
    from tasks.errors import ConfigError

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    tiny_config.output.dir.mkdir(parents=True)
    (tiny_config.output.dir / "models").symlink_to(outside)
    (tiny_config.output.dir / "reports").symlink_to(tiny_config.output.dir / "data")  # inside: allowed
    with pytest.raises(ConfigError, match=r"models: leads to .*elsewhere, outside output.dir"):
        run_stage(tiny_config, "validate")
    assert list(outside.iterdir()) == []
    (tiny_config.output.dir / "models").unlink()
    (tiny_config.output.dir / "models").symlink_to("../../" + outside.name)  # a ../ escape, relative
    with pytest.raises(ConfigError, match="outside output.dir"):
        layout_of(tiny_config)


def test_every_torch_load_and_numpy_load_in_the_code_refuses_pickles():
    import ast

    from tests.conftest import REPO

    calls = []
    for path in sorted([*REPO.glob("tasks/*.py"), *REPO.glob("flows/*.py"), *REPO.glob("deployments/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in ("torch", "np", "numpy"):
                keywords = {kw.arg: kw.value for kw in node.keywords}
                safe = (node.func.value.id == "torch" and getattr(keywords.get("weights_only"), "value", None) is True) \
                    or (node.func.value.id != "torch" and getattr(keywords.get("allow_pickle"), "value", None) is False)
                calls.append((path.name, node.lineno, safe))
    assert calls, "expected the checkpoint and embedding-cache loaders"
    assert [call for call in calls if not call[2]] == []
