"""`dvc repro` on a fresh copy of the repo: every stage runs, a second repro does nothing, metrics and plots are
readable, and an experiment with one param changed re-runs only the stages that read it."""

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


def test_repro_runs_every_stage_then_nothing_and_an_experiment_reruns_only_what_changed(repo_copy):
    copy, env = repo_copy
    first = dvc(copy, env, "repro")
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name in stages:
        assert f"Running stage '{name}'" in first, name
    lock = yaml.safe_load((copy / "dvc.lock").read_text())["stages"]
    assert set(lock) == set(stages)
    assert "Data and pipelines are up to date." in dvc(copy, env, "repro")

    metrics = dvc(copy, env, "metrics", "show", "--json")
    assert "outputs/reports/metrics.json" in metrics and "mmd2" in metrics
    assert "confusion_matrix_adapted.png" in dvc(copy, env, "plots", "show", "--json")

    subprocess.run(["git", "add", "-A"], cwd=copy, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "first repro"], cwd=copy, env=env, check=True)
    experiment = dvc(copy, env, "exp", "run", "-S", "train.epochs=1")
    rerun = {name for name in stages if f"Running stage '{name}'" in experiment}
    assert rerun == {"train-baseline", "train", "evaluate", "register"}, experiment[-2000:]
