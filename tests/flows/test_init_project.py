"""`adaptflow init`: from a user's own files, as people have them, to a params.yaml, DVC-tracked data and a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows.cli import main
from tests.conftest import SAMPLE, copy_project


def _user_files(directory: Path) -> tuple[Path, Path]:
    """The sample reviews as a user might have them: `review,sentiment` columns, the source exported by a
    spreadsheet in a `;` locale, the target an .xlsx workbook."""
    from openpyxl import Workbook

    directory.mkdir(parents=True, exist_ok=True)
    source = pd.read_csv(SAMPLE / "electronics.csv")
    source_file = directory / "electronics-reviews.csv"
    pd.DataFrame({"review": source["text"], "sentiment": source["label"]}).to_csv(
        source_file, sep=";", index=False, lineterminator="\r\n", encoding="utf-8-sig")
    target = pd.read_csv(SAMPLE / "kitchen.csv")
    book = Workbook()
    sheet = book.active
    sheet.append(["review", "sentiment"])
    for text, label in zip(target["text"], target["label"], strict=True):
        sheet.append([text, label])
    target_file = directory / "kitchen-reviews.xlsx"
    book.save(target_file)
    return source_file, target_file


def test_init_writes_params_for_the_detected_columns_and_refuses_to_overwrite_an_edit(tmp_path, monkeypatch, capsys):
    source, target = _user_files(tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--source", str(source), "--target", str(target)]) == 0
    out = capsys.readouterr().out
    assert "text: review; label: sentiment (negative, positive); rows: source 400, target 400" in out
    assert "adaptflow run --params params.yaml" in out
    data = yaml.safe_load(Path("params.yaml").read_text())["data"]
    assert (data["source"], data["target"]) == (str(source), str(target))
    assert (data["text_columns"], data["label_column"]) == (["review"], "sentiment")
    assert main(["init", "--source", str(source), "--target", str(target)]) == 0  # unchanged: fine to rewrite

    Path("params.yaml").write_text(Path("params.yaml").read_text().replace("seed: 0", "seed: 7"))
    assert main(["init", "--source", str(source), "--target", str(target)]) == 1
    assert "params.yaml: exists and was edited" in capsys.readouterr().err
    assert "seed: 7" in Path("params.yaml").read_text()
    assert main(["init", "--source", str(source), "--target", str(target), "--force"]) == 0
    assert "seed: 7" not in Path("params.yaml").read_text()


def test_init_asks_when_the_columns_are_ambiguous_and_checks_the_labels(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"review": ["a", "b", "c"], "content": ["x", "y", "z"], "label": ["p", "n", "p"]}).to_csv(
        "two.csv", index=False)
    assert main(["init", "--source", "two.csv", "--target", "two.csv"]) == 1
    assert "several columns could be the text (review, content)" in capsys.readouterr().err
    pd.DataFrame({"text": ["a", "b"], "label": ["p", "n"]}).to_csv("source.csv", index=False)
    pd.DataFrame({"text": ["c", "d"], "label": ["p", "maybe"]}).to_csv("target.csv", index=False)
    assert main(["init", "--source", "source.csv", "--target", "target.csv"]) == 1
    assert "target has label 'maybe' that the source lacks" in capsys.readouterr().err
    assert not Path("params.yaml").exists()  # nothing written for files that cannot work


@pytest.mark.integration
def test_from_two_user_files_init_validate_and_run_succeed_and_dvc_tracks_the_files(tmp_path, tiny_model_dir):
    copy = copy_project(tmp_path / "repo")
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns.db'}"}

    def run(*command: str) -> str:
        done = subprocess.run(list(command), cwd=copy, env=env, capture_output=True, text=True, timeout=600,
                              check=False)
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        return done.stdout

    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "fresh clone"]):
        run(*command)
    source, target = _user_files(copy / "mine")
    adaptflow = os.path.join(bin_dir, "adaptflow")
    out = run(adaptflow, "init", "--source", "mine/electronics-reviews.csv", "--target", "mine/kitchen-reviews.xlsx")
    assert "dvc: added mine/electronics-reviews.csv.dvc" in out and "dvc: added mine/kitchen-reviews.xlsx.dvc" in out
    assert "validate --data mine/electronics-reviews.csv" in out
    assert "400 rows as source; passed" in run(adaptflow, "validate", "--data", "mine/electronics-reviews.csv")
    result = json.loads(run(adaptflow, "run", "--json", "--set", "train.epochs=1",
                            "--set", f"model.name_or_path={tiny_model_dir}",
                            "--set", "similarity.sample_size=100", "--set", "similarity.permutations=20"))
    assert result["validation"] == "passed" and result["metrics"]["n"] == 100
    assert result["rows"]["source_train"] == 400

    run("git", "add", "-A")
    run("git", "commit", "-qm", "my data")
    assert json.loads(run("dvc", "status", "--json")).keys() >= {"validate"}  # never reproduced in this copy
    source.write_text(source.read_text(encoding="utf-8-sig") + "Works fine;positive\r\n", encoding="utf-8")
    changed = json.loads(run("dvc", "status", "--json"))
    assert "mine/electronics-reviews.csv.dvc" in changed  # DVC sees the edited data file
    assert any("mine/electronics-reviews.csv" in json.dumps(entry) for entry in changed["validate"])
