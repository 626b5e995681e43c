"""`dvc repro` on a fresh copy of the repo: killed with -9 it recovers on the next repro (the lock never records an
unfinished stage), between them every stage runs, a further repro does nothing, outputs push to the default local
remote, metrics and plots are readable, and an experiment with one param changed re-runs only the stages that read
it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO, copy_project

pytestmark = pytest.mark.integration


@pytest.fixture
def repo_copy(tmp_path, tiny_model_dir):
    """The project's files (as a fresh clone has them) in a new git repo, with params for a tiny model."""
    copy = copy_project(tmp_path / "repo")
    _set_params(copy, tiny_model_dir, data={"source": "data/sample/electronics.csv"}, model={"max_length": 48},
                train={"epochs": 2})
    return _commit_copy(copy, tmp_path)


def _set_params(copy, tiny_model_dir, **sections):
    """params.yaml of the copy for the tiny model on a small split, with `sections` updated on top."""
    params = yaml.safe_load((copy / "params.yaml").read_text())
    tiny = {"data": {"target": "data/sample/kitchen.csv"},
            "split": {"target_test_size": 60, "target_labeled_per_class": 10},
            "model": {"name_or_path": str(tiny_model_dir)},
            "train": {"learning_rate": 1e-2, "freeze_embeddings": False},
            "similarity": {"sample_size": 100, "permutations": 20}}
    for name in {*tiny, *sections}:
        params[name].update({**tiny.get(name, {}), **sections.get(name, {})})
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _commit_copy(copy, tmp_path):
    """dvc.yaml regenerated for the edited params (as a user runs it), then the copy committed."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns.db'}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    adaptflow = os.path.join(os.path.dirname(sys.executable), "adaptflow")
    subprocess.run([adaptflow, "dvc-yaml"], cwd=copy, env=env, check=True, capture_output=True)
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "fresh clone"]):
        subprocess.run(command, cwd=copy, env=env, check=True)
    return copy, env


def dvc(copy, env, *args: str) -> str:
    done = subprocess.run(["dvc", *args], cwd=copy, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.reliability
def test_repro_survives_kill_9_then_does_nothing_pushes_shows_metrics_and_reruns_only_what_an_experiment_changes(
        repo_copy):
    import signal
    import time

    copy, env = repo_copy
    stages = yaml.safe_load((copy / "dvc.yaml").read_text())["stages"]

    # kill -9 dvc and the stage it runs once training has written a checkpoint
    log = copy.parent / "killed-repro.log"
    with log.open("w") as out:
        process = subprocess.Popen(["dvc", "repro"], cwd=copy, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        deadline = time.monotonic() + 300
        while not list((copy / "outputs" / "checkpoints").glob("*/epoch-1/state.json")):
            assert process.poll() is None, "dvc repro ended before any training checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    lock_file = copy / "dvc.lock"
    recorded = set(yaml.safe_load(lock_file.read_text())["stages"]) if lock_file.exists() else set()
    unfinished = {"train-baseline", "train"} - recorded
    assert unfinished, "dvc.lock records a training stage that was killed"

    # the next repro recovers: the killed stage and everything after it run; together every stage ran
    rerun = dvc(copy, env, "repro")
    for name in unfinished:
        assert f"Running stage '{name}'" in rerun
    ran = {name for name in stages if f"Running stage '{name}'" in log.read_text() + rerun}
    assert ran == set(stages)
    assert set(yaml.safe_load(lock_file.read_text())["stages"]) == set(stages)
    assert "Data and pipelines are up to date." in dvc(copy, env, "repro")

    assert "pushed" in dvc(copy, env, "push")  # to the default local remote, .dvc-storage/
    assert any(path.is_file() for path in (copy / ".dvc-storage").rglob("*"))
    metrics = dvc(copy, env, "metrics", "show", "--json")
    assert "outputs/reports/metrics.json" in metrics and "mmd2" in metrics
    assert "confusion_matrix_adapted.png" in dvc(copy, env, "plots", "show", "--json")

    subprocess.run(["git", "add", "-A"], cwd=copy, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "first repro"], cwd=copy, env=env, check=True)
    experiment = dvc(copy, env, "exp", "run", "-S", "train.epochs=1")
    rerun = {name for name in stages if f"Running stage '{name}'" in experiment}
    assert rerun == {"train-baseline", "train", "evaluate", "register"}, experiment[-2000:]


def _status(copy, env) -> set[str]:
    """The stages `dvc status` lists as changed."""
    import json

    return set(json.loads(dvc(copy, env, "status", "--json")))


def test_editing_a_stages_code_or_a_configured_data_file_makes_dvc_see_the_stage_as_changed(tmp_path,
                                                                                           tiny_model_dir):
    copy = copy_project(tmp_path / "repo")
    own = copy / "mine" / "reviews.csv"  # the user's own source file, named by data.source
    own.parent.mkdir()
    shutil.copy2(REPO / "data" / "sample" / "electronics.csv", own)
    _set_params(copy, tiny_model_dir, data={"source": "mine/reviews.csv"}, model={"max_length": 32},
                train={"epochs": 1}, evaluation={"baseline": False}, tracking={"enabled": False})
    copy, env = _commit_copy(copy, tmp_path)
    assert "mine/reviews.csv" in yaml.safe_load((copy / "dvc.yaml").read_text())["stages"]["validate"]["deps"]
    dvc(copy, env, "repro")
    assert _status(copy, env) == set()

    stage_code = copy / "flows" / "stages" / "prepare.py"  # the file that defines the prepare stage's function
    original = stage_code.read_text()
    stage_code.write_text(original + "# an edit\n")
    assert _status(copy, env) == {"prepare"}
    stage_code.write_text(original)
    assert _status(copy, env) == set()

    own.write_text(own.read_text() + "electronics-9999,electronics,S0,Fine,Works as described.,5,positive\n")
    assert _status(copy, env) == {"validate"}


def test_queued_experiments_run_two_at_a_time_and_each_is_listed_with_metrics_and_tracked_in_mlflow(repo_copy):
    import json
    import time

    from mlflow import MlflowClient

    copy, env = repo_copy
    # the baseline first, as DVC's experiments workflow has it: the queued experiments then check out the stages
    # their params leave unchanged instead of running them at once into the one cache (two experiments committing
    # the same output at the same moment fail with "unable to remove ... without a confirmation")
    dvc(copy, env, "repro")
    for command in (["git", "add", "dvc.lock"], ["git", "commit", "-qm", "baseline"]):
        subprocess.run(command, cwd=copy, env=env, check=True)
    for rate in ("0.01", "0.03"):
        assert "Queued experiment" in dvc(copy, env, "exp", "run", "--queue", "-S", f"train.learning_rate={rate}",
                                          "-S", "train.epochs=1")
    dvc(copy, env, "queue", "start", "-j", "2")
    try:
        deadline = time.monotonic() + 900
        while True:
            status = dvc(copy, env, "queue", "status")
            if "Queued" not in status and "Running" not in status:
                break
            assert time.monotonic() < deadline, status
            time.sleep(5)
        failed = [line.split()[0] for line in status.splitlines() if "Failed" in line]
        assert status.count("Success") == 2, status + "".join(subprocess.run(
            ["dvc", "queue", "logs", task], cwd=copy, env=env, capture_output=True, text=True).stdout[-4000:]
            for task in failed)
    finally:
        subprocess.run(["dvc", "queue", "stop", "--kill"], cwd=copy, env=env, capture_output=True, check=False)
    shown = json.loads(dvc(copy, env, "exp", "show", "--json"))
    experiments = [exp for entry in shown for exp in (entry.get("experiments") or [])]
    rates = set()
    for experiment in experiments:
        data = experiment["revs"][0]["data"]
        rates.add(data["params"]["params.yaml"]["data"]["train"]["learning_rate"])
        assert 0 <= data["metrics"]["outputs/reports/metrics.json"]["data"]["metrics"]["accuracy"] <= 1
    assert rates == {0.01, 0.03}
    store = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = store.search_runs([store.get_experiment_by_name("adaptflow").experiment_id])
    queued = [run for run in runs if run.data.params["train.epochs"] == "1"]  # the baseline's run trains 2 epochs
    assert len(runs) == 3 and sorted(run.data.params["train.learning_rate"] for run in queued) == ["0.01", "0.03"]
