"""`adaptflow sweep` on a real Dask cluster: a scheduler and two workers started here on 127.0.0.1, a 2x2 sweep of
the tiny model as Prefect tasks on them, the pick made on validation data, a child MLflow run per candidate."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, start_process, stop_process_group

pytestmark = pytest.mark.integration


@pytest.fixture
def dask_cluster(tmp_path):
    """`dask scheduler` and two `dask worker` processes (one thread, one fine-tune slot each); stopped after."""
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [start_process([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                "--dashboard-address", ":0"], dict(os.environ), tmp_path / "scheduler.log")]
    try:
        for name in ("a", "b"):
            processes.append(start_process(
                [dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--resources", "fine-tune=1",
                 "--name", f"worker-{name}", "--no-dashboard", "--host", "127.0.0.1"],
                dict(os.environ), tmp_path / f"worker-{name}.log"))
        deadline = time.monotonic() + 120
        with Client(address, timeout=60) as client:
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.monotonic() < deadline, (tmp_path / "worker-a.log").read_text()[-2000:]
                time.sleep(0.5)
            workers = sorted(client.scheduler_info()["workers"])
        yield address, workers
    finally:
        for process in reversed(processes):
            stop_process_group(process)


def test_a_two_by_two_sweep_runs_each_candidate_on_the_cluster_and_picks_on_validation_data(
        prefect_harness, dask_cluster, tiny_config, mlflow_store):
    from mlflow import MlflowClient

    from flows.sweeping import dask_runner, sweep_flow

    address, workers = dask_cluster
    tiny_config.tracking.uri = mlflow_store
    tiny_config.evaluation.baseline = False
    tiny_config.train.epochs = 1
    state = sweep_flow.with_options(task_runner=dask_runner(address, 2))(
        tiny_config, {"train.learning_rate": ["1e-2", "3e-2"]}, [0, 1], 1, return_state=True)
    summary = state.result()
    results = {result["id"]: result for result in summary["candidates"]}
    assert len(results) == 4 and not [r for r in results.values() if r.get("error")]
    assert {result["worker"] for result in results.values()} == set(workers)  # both workers fine-tuned
    assert all(result["selection_n"] > 0 and result["selection_macro_f1"] is not None for result in results.values())
    best = max(result["selection_macro_f1"] for result in results.values())
    assert results[summary["winner"]]["selection_macro_f1"] == best  # picked on validation, not on test
    assert summary["why"].startswith("best macro-F1 on the target validation split")
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
