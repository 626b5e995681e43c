"""On a real Prefect server: a process work pool, a worker, both deployments; a run created through the API with
custom parameters (what the UI's Run button does) completes with its result and artifacts; a data-changed event
starts the scheduled-retraining deployment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE

pytestmark = pytest.mark.integration
POOL = "adaptflow-test"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO,
                            start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """`prefect server start` on 127.0.0.1 (its own SQLite database and home), and a process worker on a pool."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api,
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOCAL_STORAGE_PATH": str(home / "results")}
    prefect = str(Path(sys.executable).with_name("prefect"))
    server = _start([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env,
                    home / "server.log")
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                _stop(server)
                pytest.fail(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
    subprocess.run([prefect, "work-pool", "create", POOL, "--type", "process"], env=env, check=True,
                   capture_output=True)
    # The worker serves the on-demand queue only: runs the data trigger starts on `retraining` are seen, not run.
    worker = _start([prefect, "worker", "start", "--pool", POOL, "--type", "process", "--work-queue", "on-demand"],
                    env, home / "worker.log")
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield api
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _stop(worker)
        _stop(server)


def _wait_final(client, flow_run_id, timeout: float = 420):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(2)
    pytest.fail(f"flow run {flow_run_id} did not finish in {timeout} s")


def test_a_worker_runs_the_on_demand_deployment_with_parameters_from_the_api_and_new_data_triggers_retraining(
        prefect_server, tiny_model_dir, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterId
    from prefect.deployments import run_deployment

    from deployments.deploy import deploy
    from flows.watching import changed_files, emit_changes
    from tasks.config import build_config

    ids = deploy(POOL)
    assert set(ids) == {"scheduled-retraining", "on-demand"}
    parameters = {"config": {
        "data": {"source": str(SAMPLE / "electronics.csv"), "target": str(SAMPLE / "kitchen.csv")},
        "split": {"target_test_size": 60, "target_labeled_per_class": 10},
        "model": {"name_or_path": str(tiny_model_dir), "max_length": 48},
        "train": {"epochs": 1, "learning_rate": 1e-2, "freeze_embeddings": False},
        "similarity": {"sample_size": 100, "permutations": 20, "cache_dir": str(tmp_path / "cache")},
        "output": {"dir": str(tmp_path / "outputs")},
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlruns.db'}"},
    }}
    flow_run = run_deployment("adaptflow/on-demand", parameters=parameters, timeout=0)
    with get_client(sync_client=True) as client:
        finished = _wait_final(client, flow_run.id)
        assert finished.state.is_completed(), finished.state.message
        assert finished.parameters["config"]["train"]["epochs"] == 1
        summary = finished.state.result()
        assert summary["metrics"]["n"] == 60 and summary["registered"]["version"] == 1
        assert (tmp_path / "outputs" / "reports" / "metrics.json").is_file()
        keys = {artifact.key for artifact in client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))}
        assert {"adaptflow-report", "adaptflow-validation"} <= keys

        # new data: `adaptflow watch` emits the event, the trigger creates a run of scheduled-retraining
        config = build_config(parameters["config"])
        changed_files(config, tmp_path / "watch.json")
        target = tmp_path / "kitchen.csv"
        target.write_bytes((SAMPLE / "kitchen.csv").read_bytes())
        config.data.target = target
        changes = changed_files(config, tmp_path / "watch.json")
        assert [Path(change["path"]).name for change in changes] == ["kitchen.csv"]
        assert emit_changes(changes) == 1
        deadline = time.monotonic() + 120
        triggered = []
        while not triggered and time.monotonic() < deadline:
            time.sleep(2)
            triggered = client.read_flow_runs(deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[ids["scheduled-retraining"]])))
            triggered = [run for run in triggered if run.created_by is not None
                         and run.created_by.type == "AUTOMATION"]
        assert triggered, "the adaptflow.data.changed event did not start scheduled-retraining"
