"""`adaptflow sweep` on a real Dask cluster: a scheduler and two workers started here on 127.0.0.1, a 2x2 sweep of
the tiny model as Prefect tasks on them, the pick made on validation data, a child MLflow run per candidate."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.conftest import free_port, start_process, stop_process_group

pytestmark = pytest.mark.integration


@pytest.fixture
def dask_cluster(tmp_path):
    """`dask scheduler` and two `dask worker` processes (one thread, one fine-tune slot each); stopped after."""
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    env = {**os.environ, "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON": "{}"}  # as the docs start workers
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [start_process([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                "--dashboard-address", ":0"], env, tmp_path / "scheduler.log")]
    try:
        for name in ("a", "b"):
            processes.append(start_process(
                [dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--resources", "fine-tune=1",
                 "--name", f"worker-{name}", "--no-dashboard", "--host", "127.0.0.1"],
                env, tmp_path / f"worker-{name}.log"))
        deadline = time.monotonic() + 120
        with Client(address, timeout=60) as client:
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.monotonic() < deadline, (tmp_path / "worker-a.log").read_text()[-2000:]
                time.sleep(0.5)
            workers = {info["name"]: worker for worker, info in client.scheduler_info()["workers"].items()}
        yield address, workers, dict(zip(("worker-a", "worker-b"), processes[1:], strict=True))
    finally:
        for process in reversed(processes):
            stop_process_group(process)


def test_a_two_by_two_sweep_runs_each_candidate_on_the_cluster_and_picks_on_validation_data(
        prefect_harness, dask_cluster, tiny_config, mlflow_store):
    from mlflow import MlflowClient

    from flows.sweeping import dask_runner, sweep_flow

    address, workers, _ = dask_cluster
    tiny_config.tracking.uri = mlflow_store
    tiny_config.evaluation.baseline = False
    tiny_config.train.epochs = 1
    state = sweep_flow.with_options(task_runner=dask_runner(address, 2))(
        tiny_config, {"train.learning_rate": ["1e-2", "3e-2"]}, [0, 1], 1, "validation", return_state=True)
    summary = state.result()
    results = {result["id"]: result for result in summary["candidates"]}
    assert len(results) == 4 and not [r for r in results.values() if r.get("error")]
    assert {result["worker"] for result in results.values()} == set(workers.values())  # both workers fine-tuned
    spans = sorted((r["started_at"], r["ended_at"], r["worker"]) for r in results.values())
    assert any(a[1] > b[0] and a[2] != b[2] for a, b in zip(spans, spans[1:]))  # two candidates at the same time
    assert all(result["selection_n"] > 0 and result["selection_macro_f1"] is not None for result in results.values())
    best = max(result["selection_macro_f1"] for result in results.values())
    assert results[summary["winner"]]["selection_macro_f1"] == best  # picked on validation, not on test
    assert summary["why"].startswith("best macro-F1 on the target validation split")
    # what the candidates logged on the Dask workers is in their task runs' logs (the engine's progress lines too)
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterTaskRunId

    with get_client(sync_client=True) as prefect:
        task_runs = [run for run in prefect.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))) if run.name.startswith("candidate-")]
        assert len(task_runs) == 4
        deadline = time.monotonic() + 30
        while True:  # the API receives logs in batches
            logs = prefect.read_logs(log_filter=LogFilter(task_run_id=LogFilterTaskRunId(
                any_=[run.id for run in task_runs])))
            if any("epoch 1/1: step" in log.message for log in logs) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert any("epoch 1/1: step" in log.message for log in logs), [log.message for log in logs][:10]
    # each candidate wrote its own outputs; the shared stages ran once
    for result in results.values():
        assert (Path(tiny_config.output.dir) / "sweep" / result["id"] / "reports" / "metrics.json").is_file()
    assert (Path(tiny_config.output.dir) / "sweep" / "scores.png").stat().st_size > 1000

    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.data.tags["sweep.winner"] == summary["winner"]
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(run.data.tags["sweep.candidate"] for run in children) == sorted(results)
    for run in children:
        assert run.data.metrics["selection.macro_f1"] == pytest.approx(
            results[run.data.tags["sweep.candidate"]]["selection_macro_f1"])
    assert summary["registered"]["version"] == 1
    version = client.get_model_version("adaptflow-classifier", "1")
    assert client.get_run(version.run_id).data.tags["sweep.candidate"] == summary["winner"]
    assert json.loads(Path(client.download_artifacts(parent.info.run_id, "sweep/summary.json",
                                                     str(Path(tiny_config.output.dir))))
                      .read_text())["winner"] == summary["winner"]


def test_a_worker_killed_mid_sweep_leaves_its_candidate_to_the_other_worker_and_the_sweep_completes(
        prefect_harness, dask_cluster, tiny_config):
    """Dask reschedules the candidate of a dead worker on a live one (its `fine-tune` slot free once that
    worker's own candidate is done): the candidate is re-run, not failed, and every candidate finishes."""
    import signal
    import threading

    from flows.sweeping import dask_runner, sweep_flow

    address, workers, processes = dask_cluster
    tiny_config.tracking.enabled = False
    tiny_config.evaluation.baseline = False
    tiny_config.train.epochs = 4
    sweep_root = Path(tiny_config.output.dir) / "sweep"
    killed = threading.Event()

    def kill_worker_b_once_both_candidates_train() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if len(list(sweep_root.glob("*/training_set/summary.json"))) == 2:  # both prepared: both training
                os.killpg(processes["worker-b"].pid, signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_worker_b_once_both_candidates_train)
    killer.start()
    summary = sweep_flow.with_options(task_runner=dask_runner(address, 2))(
        tiny_config, {"train.learning_rate": ["1e-2", "3e-2"]}, None, 1, "validation")
    killer.join()
    assert killed.is_set(), "the sweep ended before both candidates were training"
    results = summary["candidates"]
    assert len(results) == 2 and not [result for result in results if result.get("error")]
    assert {result["worker"] for result in results} == {workers["worker-a"]}  # the killed one's re-ran on a
    assert summary["winner"] in {result["id"] for result in results}


def test_with_few_labelled_target_texts_the_pick_is_made_on_all_of_them_out_of_fold(prefect_harness, tiny_config):
    """20 labelled target texts (4 in the validation split): each candidate is also trained 4 more times, each time
    without a fifth of them, and scored on every one of the 20 by a model that did not train on it."""
    from flows.layout import Layout, read_role
    from flows.sweeping import sweep_flow

    tiny_config.tracking.enabled = False
    tiny_config.train.epochs = 1
    torch.set_num_threads(2)
    summary = sweep_flow(tiny_config, {"train.learning_rate": ["1e-2", "3e-2"]}, None, 1)  # auto: <= 50 texts
    assert torch.get_num_threads() == 2  # the candidates' 1 thread was theirs only: later runs here keep 2
    results = {result["id"]: result for result in summary["candidates"]}
    assert len(results) == 2 and not [r for r in results.values() if r.get("error")]
    shared = Layout(Path(tiny_config.output.dir))
    labelled = pd.concat([read_role(shared, "target_labeled"), read_role(shared, "target_validation")])
    assert len(labelled) == 20
    for name, result in results.items():
        assert (result["selection_n"], result["selection_folds"]) == (20, 5)
        root = Path(tiny_config.output.dir) / "sweep" / name
        held_out = [read_role(Layout(root), "target_validation")] + \
            [read_role(Layout(root / "folds" / str(fold)), "target_validation") for fold in range(1, 5)]
        assert sorted(pd.concat(held_out)["text"]) == sorted(labelled["text"])  # each text held out exactly once
        for fold in range(1, 5):
            fold_layout = Layout(root / "folds" / str(fold))
            trained_on = set(read_role(fold_layout, "target_labeled")["text"])
            assert not trained_on & set(read_role(fold_layout, "target_validation")["text"])
            assert (fold_layout.model("adapted") / "model.safetensors").is_file()
    best = max(result["selection_macro_f1"] for result in results.values())
    assert results[summary["winner"]]["selection_macro_f1"] == best
    assert summary["why"] == ("best macro-F1 over 5 folds of the 20 labelled target texts (each predicted by the "
                              "candidate trained without it)")


LOCAL_CLUSTER_SCRIPT = '''
import json, os
from prefect import flow, task
from prefect.client.orchestration import get_client

@task
def where():
    import dask
    return {"api": os.environ.get("PREFECT_API_URL"), "profiler": dask.config.get("distributed.worker.profile.enabled"),
            "dask_environ": [name for name in ("OMP_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_") if name in os.environ]}

if __name__ == "__main__":
    from flows.sweeping import dask_runner

    @flow
    def probe():
        return where.submit().result()

    reported = probe.with_options(task_runner=dask_runner(None, 1))()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs()
        print(json.dumps({"worker": reported, "flow_api": str(client.api_url).rstrip("/"),
                          "task_runs": [run.name for run in runs]}))
'''


def test_a_local_cluster_started_without_a_prefect_api_reports_its_tasks_to_the_flows_own(tmp_path):
    """No PREFECT_API_URL: the flow starts an ephemeral API, and the local Dask workers report there (the task run
    is in it) instead of each starting an ephemeral API of its own. The workers run without Dask's thread and
    allocator settings and without its profiler (flows.sweeping.LOCAL_WORKER_CONFIG)."""
    import subprocess

    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    (tmp_path / "probe.py").write_text(LOCAL_CLUSTER_SCRIPT, encoding="utf-8")
    done = subprocess.run([sys.executable, str(tmp_path / "probe.py")], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["worker"]["api"] == answer["flow_api"]
    assert answer["worker"]["api"].startswith("http://127.0.0.1:")
    assert answer["worker"]["profiler"] is False and answer["worker"]["dask_environ"] == []
    assert [name for name in answer["task_runs"] if name.startswith("where-")]
    assert done.stderr.count("Starting temporary server") == 1
