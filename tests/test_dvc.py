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

from tests.conftest import REPO

pytestmark = pytest.mark.integration


@pytest.fixture
def repo_copy(tmp_path, tiny_model_dir):
    """The project's files (as a fresh clone has them) in a new git repo, with params for a tiny model."""
    copy = tmp_path / "repo"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["data"].update(source="data/sample/electronics.csv", target="data/sample/kitchen.csv")
    params["split"].update(target_test_size=60, target_labeled_per_class=10)
    params["model"].update(name_or_path=str(tiny_model_dir), max_length=48)
    params["train"].update(epochs=2, learning_rate=1e-2, freeze_embeddings=False)
    params["similarity"].update(sample_size=100, permutations=20)
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns.db'}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
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
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

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
