"""On a real Prefect server: a process work pool, a worker, the three deployments; a run created through the API with
custom parameters (what the UI's Run button does) completes with its result and artifacts; a data-changed event
starts the scheduled-retraining deployment, and the watcher deployment emits it by itself for new, settled data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE, browser_page, free_port, start_process, stop_process_group

pytestmark = pytest.mark.integration
POOL = "adaptflow-test"


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory, prefect_harness):
    """`prefect server start` on 127.0.0.1 (its own SQLite database and home), and a process worker on a pool.

    The session's test harness starts first: started after this module's server had come and gone, it left later
    in-process flow runs waiting on the stopped server's address."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api,
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOCAL_STORAGE_PATH": str(home / "results")}
    prefect = str(Path(sys.executable).with_name("prefect"))
    server = start_process([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env,
                    home / "server.log")
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                stop_process_group(server)
                pytest.fail(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
    subprocess.run([prefect, "work-pool", "create", POOL, "--type", "process"], env=env, check=True,
                   capture_output=True)
    # The worker serves the on-demand and watch queues: runs the data trigger starts on `retraining` are seen, not run.
    worker = start_process([prefect, "worker", "start", "--pool", POOL, "--type", "process", "--work-queue", "on-demand",
                     "--work-queue", "watch"], env, home / "worker.log")
    from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:  # settings too: a session's test harness may have pinned PREFECT_API_URL to its own server
        with temporary_settings({PREFECT_API_URL: api, PREFECT_LOCAL_STORAGE_PATH: home / "results"}):
            yield api
            _drain_event_and_log_workers()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stop_process_group(worker)
        stop_process_group(server)


def _drain_event_and_log_workers() -> None:
    """Send what this process still holds for this server, and end the workers that send it: they are keyed by
    client type, not by address, so left running they would send the next server's task-run events here (as
    Prefect's own test harness does on exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    try:
        APILogWorker.instance().drain()
    except RuntimeError:  # never started
        pass
    EventsWorker.drain_all()


def tiny_run_config(model_dir: Path, workdir: Path, epochs: int) -> dict:
    return {
        "data": {"source": str(SAMPLE / "electronics.csv"), "target": str(SAMPLE / "kitchen.csv")},
        "split": {"target_test_size": 60, "target_labeled_per_class": 10},
        "model": {"name_or_path": str(model_dir), "max_length": 48},
        "train": {"epochs": epochs, "learning_rate": 1e-2, "freeze_embeddings": False},
        "similarity": {"sample_size": 100, "permutations": 20, "cache_dir": str(workdir / "cache")},
        "output": {"dir": str(workdir / "outputs")},
        "tracking": {"uri": f"sqlite:///{workdir / 'mlruns.db'}"},
    }


def tiny_params_file(model_dir: Path, workdir: Path, epochs: int, **data) -> Path:
    """A params.yaml as a user edits it, for the tiny model, with `data` paths set."""
    import yaml

    raw = tiny_run_config(model_dir, workdir, epochs)
    raw["data"].update({key: str(value) for key, value in data.items()})
    path = workdir / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _wait_final(client, flow_run_id, timeout: float = 420):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(2)
    pytest.fail(f"flow run {flow_run_id} did not finish in {timeout} s")


def test_a_worker_runs_what_the_params_file_says_and_new_data_triggers_retraining(
        prefect_server, tiny_model_dir, tmp_path):
    from mlflow import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.deployments import run_deployment

    from deployments.deploy import deploy

    edited_target = tmp_path / "my-target.csv"  # the user's edit: another target file, one epoch
    edited_target.write_bytes((SAMPLE / "kitchen.csv").read_bytes())
    ids = deploy(POOL, params=tiny_params_file(tiny_model_dir, tmp_path, epochs=1, target=edited_target),
                 watch_state=tmp_path / "watch-state.json")
    assert set(ids) == {"scheduled-retraining", "watch-data", "on-demand"}
    flow_run = run_deployment("adaptflow/on-demand", timeout=0)  # no parameters: the deployment's own
    with get_client(sync_client=True) as client:
        finished = _wait_final(client, flow_run.id)
        assert finished.state.is_completed(), finished.state.message
        assert finished.parameters["config"]["train"]["epochs"] == 1
        assert finished.parameters["config"]["data"]["target"] == str(edited_target)
        for deployment_id in ids.values():  # both run the file's config, the scheduled one too
            assert client.read_deployment(deployment_id).parameters["config"]["train"]["epochs"] == 1
        store = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
        (tracked,) = store.search_runs([store.get_experiment_by_name("adaptflow").experiment_id])
        assert tracked.data.params["train.epochs"] == "1"
        assert tracked.data.params["data.target"] == str(edited_target)
        summary = finished.state.result()
        assert summary["metrics"]["n"] == 60 and summary["registered"]["version"] == 1
        assert (tmp_path / "outputs" / "reports" / "metrics.json").is_file()
        keys = {artifact.key for artifact in client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))}
        assert {"adaptflow-report", "adaptflow-validation"} <= keys

        # new data: `adaptflow watch` (as a user runs it, from cron) emits the event; the trigger starts a run
        target = tmp_path / "kitchen.csv"
        target.write_bytes((SAMPLE / "kitchen.csv").read_bytes())
        watch = [str(Path(sys.executable).with_name("adaptflow")), "watch", "--state", str(tmp_path / "watch.json"),
                 "--set", f"data.target={target}"]
        subprocess.run([*watch, "--dry-run"], cwd=REPO, check=True, capture_output=True)  # remember the hashes
        target.write_bytes(target.read_bytes() + b"kitchen-9999,kitchen,S0,Sturdy lid,Works well.,5,positive\n")
        done = subprocess.run(watch, check=False, cwd=REPO, capture_output=True, text=True, env=os.environ.copy())
        assert done.returncode == 0, done.stderr
        assert "emitted 1 adaptflow.data.changed event(s)" in done.stdout
        deadline = time.monotonic() + 120
        triggered = []
        while not triggered and time.monotonic() < deadline:
            time.sleep(2)
            triggered = client.read_flow_runs(deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[ids["scheduled-retraining"]])))
            triggered = [run for run in triggered if run.created_by is not None
                         and run.created_by.type == "AUTOMATION"]
        assert triggered, "the adaptflow.data.changed event did not start scheduled-retraining"




def _automation_runs(client, deployment_id, since) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return [run for run in runs if run.created_by is not None and run.created_by.type == "AUTOMATION"
            and run.created >= since]


def _finished_runs(client, deployment_id, since) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return [run for run in runs if run.state is not None and run.state.is_completed() and run.end_time is not None
            and run.end_time >= since]


def _logs(client, flow_run_ids) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    if not flow_run_ids:
        return ""
    return "\n".join(log.message for log in client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=list(flow_run_ids)))))


def test_the_watcher_deployment_starts_retraining_by_itself_once_new_data_has_settled(
        prefect_server, tiny_model_dir, tmp_path):
    import threading
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client

    from deployments.deploy import deploy
    from tasks.provenance import dvc_md5

    target = tmp_path / "kitchen.csv"
    target.write_bytes((SAMPLE / "kitchen.csv").read_bytes())
    os.utime(target, (time.time() - 60, time.time() - 60))  # written a minute ago: settled
    state = tmp_path / "watch-state.json"
    since = datetime.now(UTC)
    ids = deploy(POOL, params=tiny_params_file(tiny_model_dir, tmp_path, epochs=1, target=target),
                 watch_every=5, settle=4, watch_state=state)
    with get_client(sync_client=True) as client:
        # the first looks record the hashes; unchanged files start nothing
        deadline = time.monotonic() + 180
        while len(_finished_runs(client, ids["watch-data"], since)) < 2 and time.monotonic() < deadline:
            time.sleep(2)
        assert len(_finished_runs(client, ids["watch-data"], since)) >= 2, "the watcher did not run on its schedule"
        assert json.loads(state.read_text())[str(target.resolve())] == dvc_md5(target)
        assert not _automation_runs(client, ids["scheduled-retraining"], since)

        # a file being copied in (a line a second for 20 s) is left alone until it stops changing
        writing_since, done = datetime.now(UTC), threading.Event()

        def copy_slowly() -> None:
            for i in range(20):
                with target.open("a") as handle:
                    handle.write(f"kitchen-9{i:03d},kitchen,S0,Sturdy lid,Works well {i}.,5,positive\n")
                time.sleep(1)
            done.set()

        writer = threading.Thread(target=copy_slowly)
        writer.start()
        while not done.is_set():
            assert not _automation_runs(client, ids["scheduled-retraining"], since), "a half-written file counted"
            time.sleep(1)
        writer.join()
        looked = [run.id for run in _finished_runs(client, ids["watch-data"], writing_since)]
        assert looked, "no look at the data while it was being written"
        assert "still being written" in _logs(client, looked)

        # settled: the next look emits adaptflow.data.changed and the trigger starts retraining
        deadline, triggered = time.monotonic() + 150, []
        while not triggered and time.monotonic() < deadline:
            time.sleep(2)
            triggered = _automation_runs(client, ids["scheduled-retraining"], since)
        assert triggered, "new settled data did not start scheduled-retraining"
        assert json.loads(state.read_text())[str(target.resolve())] == dvc_md5(target)  # the whole file's hash


def test_deployments_on_a_docker_pool_run_the_images_code_with_no_pull_step_into_this_machine(
        prefect_server, tiny_model_dir, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from deployments.deploy import deploy

    template = json.loads((REPO / "deployments" / "work-pools" / "docker.json").read_text())
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="adaptflow-docker", type="docker", base_job_template=template))
        ids = deploy("adaptflow-docker", params=tiny_params_file(tiny_model_dir, tmp_path, epochs=1),
                     image="adaptflow:latest")
        assert set(ids) == {"scheduled-retraining", "watch-data", "on-demand"}
        for name, deployment_id in ids.items():
            deployment = client.read_deployment(deployment_id)
            assert not deployment.pull_steps, (name, deployment.pull_steps)  # the code is the image's, in /app
            assert deployment.entrypoint in ("flows.adaptation.adaptation_flow", "flows.watching.watch_data_flow")
            assert deployment.job_variables["image"] == "adaptflow:latest"
            assert str(REPO) not in json.dumps([deployment.entrypoint, deployment.path, deployment.pull_steps])


def test_a_run_started_in_the_prefect_ui_with_a_changed_parameter_completes(prefect_server, chromium,
                                                                           tiny_model_dir, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from deployments.deploy import deploy

    ids = deploy(POOL, params=tiny_params_file(tiny_model_dir, tmp_path, epochs=2))
    ui = prefect_server.removesuffix("/api")
    shots = REPO / "test-artifacts"
    shots.mkdir(exist_ok=True)
    with get_client(sync_client=True) as client:
        deployment = DeploymentFilter(id=DeploymentFilterId(any_=[ids["on-demand"]]))
        before = {run.id for run in client.read_flow_runs(deployment_filter=deployment)}
        with chromium() as playwright:
            browser, page = browser_page(playwright, 1400, 1000)
            page.goto(f"{ui}/deployments/deployment/{ids['on-demand']}")
            page.get_by_text("on-demand").first.wait_for()
            page.goto(f"{ui}/deployments/deployment/{ids['on-demand']}/run")  # Run > Custom run
            epochs = page.locator(".schema-form-property",
                                  has=page.get_by_text("Epochs (Optional)", exact=True)).last.locator("input")
            assert epochs.input_value() == "2"  # the form starts from the deployment's parameters
            epochs.fill("1")
            page.wait_for_load_state("networkidle")  # the form's schema and defaults loaded before Submit
            submit = page.get_by_role("button", name="Submit")
            submit.wait_for(state="visible")
            submit.click()
            created = []
            started = time.monotonic()  # a busy 2-core machine can take a while
            clicked_again = False
            while not created and time.monotonic() < started + 180:
                page.wait_for_timeout(1000)
                created = [run for run in client.read_flow_runs(deployment_filter=deployment) if run.id not in before]
                if (not created and not clicked_again and time.monotonic() > started + 60
                        and page.url.split("?")[0].endswith("/run") and submit.is_enabled()):
                    # CI once saw no run and no navigation 120 s after the click: click again, as a user would
                    clicked_again = True
                    submit.click()
            if not created:
                page.screenshot(path=str(shots / "prefect-ui-submit-failed.png"), full_page=True)
                toasts = page.locator(".p-toast-container").all_inner_texts()
                pytest.fail(f"submitting the form created no flow run in 180 s; page {page.url}, toasts {toasts}, "
                            f"screenshot {shots / 'prefect-ui-submit-failed.png'}")
            assert len(created) == 1, "submitting the form created more than one flow run"
            # the UI confirms and leaves the form for the deployment's page
            deployment_page = f"/deployments/deployment/{ids['on-demand']}"
            page.wait_for_url(lambda url: url.split("?")[0].endswith(deployment_page), timeout=120_000)
            page.goto(f"{ui}/runs/flow-run/{created[0].id}")
            finished = _wait_final(client, created[0].id)
            page.reload()
            page.get_by_text("Completed", exact=True).first.wait_for()  # the run's state badge in the UI
            page.screenshot(path=str(shots / "prefect-ui-run.png"), full_page=True)
            browser.close()
    assert finished.state.is_completed(), finished.state.message
    assert finished.parameters["config"]["train"]["epochs"] == 1
    assert finished.parameters["config"]["model"]["max_length"] == 48


BRANCH_TASKS = {
    "joint_training": {"validate-data": set(), "check-similarity": {"validate-data"},
                       "joint-training": {"validate-data", "check-similarity"},
                       "fine-tune-baseline": {"validate-data"},
                       "fine-tune-adapted": {"validate-data", "joint-training"},
                       "pseudo-label": {"validate-data", "fine-tune-adapted"},
                       "fine-tune-round-2": {"validate-data", "fine-tune-adapted", "pseudo-label"},
                       "evaluate-target": {"validate-data", "fine-tune-round-2", "fine-tune-baseline"},
                       "register-model": {"evaluate-target", "fine-tune-round-2"}},
    "shift_adaptation": {"validate-data": set(), "check-similarity": {"validate-data"},
                         "shift-adaptation": {"validate-data", "check-similarity"},
                         "fine-tune-baseline": {"validate-data"},
                         "fine-tune-adapted": {"validate-data", "shift-adaptation"},
                         "pseudo-label": {"validate-data", "fine-tune-adapted"},
                         "fine-tune-round-2": {"validate-data", "fine-tune-adapted", "pseudo-label"},
                         "evaluate-target": {"validate-data", "fine-tune-round-2", "fine-tune-baseline"},
                         "register-model": {"evaluate-target", "fine-tune-round-2"}},
}


@pytest.mark.parametrize("branch", sorted(BRANCH_TASKS))
def test_the_run_graph_shows_the_branch_taken_by_name_with_each_task_fed_by_its_upstream_tasks(
        prefect_server, chromium, tiny_model_dir, tmp_path, branch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.adaptation import adaptation_flow
    from tasks.config import build_config

    raw = tiny_run_config(tiny_model_dir, tmp_path, epochs=1)
    raw["strategy"] = {"branch": branch}
    state = adaptation_flow(build_config(raw), return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    deadline = time.monotonic() + 60  # the server records task runs from their events, a moment after they ran
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if len(runs) >= len(BRANCH_TASKS[branch]) and all(run.state and run.state.is_final() for run in runs) \
                    or time.monotonic() > deadline:
                break
            time.sleep(1)
    name_of = {run.id: run.name.rsplit("-", 1)[0] for run in runs}
    assert sorted(name_of.values()) == sorted(BRANCH_TASKS[branch])  # exactly this branch's tasks, once each
    for run in runs:
        upstream = {name_of[item.id] for inputs in run.task_inputs.values() for item in inputs
                    if getattr(item, "input_type", None) == "task_run"}
        assert upstream == BRANCH_TASKS[branch][name_of[run.id]], name_of[run.id]
        assert "__parents__" not in run.task_inputs, name_of[run.id]  # no task is drawn nested inside another

    ui = prefect_server.removesuffix("/api")
    shots = REPO / "test-artifacts"
    shots.mkdir(exist_ok=True)
    with chromium() as playwright:
        browser, page = browser_page(playwright, 1600, 1000)
        page.goto(f"{ui}/runs/flow-run/{flow_run_id}")
        page.get_by_text("Completed", exact=True).first.wait_for()
        page.locator("canvas").first.wait_for()  # the run graph
        page.wait_for_timeout(3000)
        # the tiny model's tasks take a second or less, too short to tell apart on the time axis: the dependency
        # grid lays every task out by its upstream tasks alone
        page.get_by_label("Run Graph Options").click()
        page.get_by_text("Dependency grid", exact=True).click()
        page.keyboard.press("Escape")
        page.get_by_title("Recenter graph (c)").click()
        page.wait_for_timeout(2000)
        page.screenshot(path=str(shots / f"prefect-run-graph-{branch}.png"), full_page=True)
        browser.close()
