"""The command line: exit codes, one-line errors, JSON output, predictions written whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from flows.cli import main
from tests.conftest import REPO, SAMPLE


def test_every_subcommand_has_help(capsys):
    for command in ("run", "validate", "similarity", "predict", "stage"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
    assert "--set KEY=VALUE" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["stage", "no-such-stage"])
    assert exit_info.value.code == 2


@pytest.mark.reliability
def test_bad_input_is_one_line_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"title,text,label\nCaf\xe9,x,positive\n")
    code = main(["stage", "validate", "--set", f"data.source={bad}", "--set", f"output.dir={tmp_path / 'out'}"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == f"adaptflow: error: {bad}: not valid UTF-8 at byte offset 20 (byte 0xe9); re-save the " \
                          "file as UTF-8"
    assert not (tmp_path / "out").exists()


def test_a_bad_override_names_the_key(tmp_path, capsys):
    code = main(["stage", "validate", "--set", "train.epoch=1"])
    assert code == 1
    assert "unknown key 'train.epoch'; valid keys in 'train': epochs" in capsys.readouterr().err


def test_validate_reports_rows_status_and_truncation(capsys):
    assert main(["validate", "--data", str(SAMPLE / "books.csv")]) == 0
    out = capsys.readouterr().out
    assert "books.csv: 400 rows as source; passed: 0 errors, 0 warnings; 0.0% of texts cut" in out


def test_validate_fails_with_one_line_per_failure(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("title,text,label\nA,fine text,positive\nB,nul\x00here,negative\n, ,positive\n"
                   "A,fine text,negative\n", encoding="utf-8")
    assert main(["validate", "--data", str(bad), "--report-dir", str(tmp_path / "report")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"ERROR {bad} [source_train] no_control_chars (ExpectColumnValuesToBeInSet, column "
                               "text): expected no NUL or control characters, found 1 rows (rows 2)")
               for line in lines)
    assert any("ERROR" in line and "row_count" in line and "observed 4" in line for line in lines)
    assert any("ERROR" in line and "text_not_blank" in line and "rows 3" in line for line in lines)
    assert any("WARNING" in line and "duplicates" in line and "rows 4" in line for line in lines)
    assert (tmp_path / "report" / "data_docs" / "index.html").is_file()
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["status"] == "failed"


@pytest.mark.reliability
def test_predict_writes_rows_with_label_and_score(tmp_path, tiny_config, capsys):
    from flows.stage_registry import run_stage

    tiny_config.strategy.branch = "joint_training"
    for stage in ("validate", "similarity", "prepare", "train"):
        run_stage(tiny_config, stage)
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"text": ["=cmd|' /C calc'!A0", "great blender", "broke in a day"]}).to_csv(rows, index=False)
    output = tmp_path / "labelled.csv"
    model = str(tiny_config.output.dir / "models" / "adapted")
    assert main(["predict", "--model", model, "--input", str(rows), "--output", str(output)]) == 0
    labelled = pd.read_csv(output)
    assert list(labelled.columns) == ["text", "label", "score"]
    assert set(labelled["label"]) <= {"negative", "positive"}
    assert labelled["text"][0].startswith("'=")  # a formula is neutralised in the CSV we write
    assert labelled["score"].between(0.5, 1.0).all()
    # the same rows through ONNX Runtime: the fp32 export answers as torch does; int8 labels them too
    for backend in ("onnx", "onnx-int8"):
        again = tmp_path / f"labelled-{backend}.csv"
        assert main(["predict", "--model", model, "--input", str(rows), "--output", str(again),
                     "--set", f"inference.backend={backend}",
                     "--set", f"inference.cache_dir={tmp_path / 'onnx'}"]) == 0
        other = pd.read_csv(again)
        assert set(other["label"]) <= {"negative", "positive"} and len(other) == 3
        if backend == "onnx":
            assert other["label"].tolist() == labelled["label"].tolist()
            assert (other["score"] - labelled["score"]).abs().max() < 2e-3  # torch: bf16 where native
    assert sorted(path.name for path in (tmp_path / "onnx").glob("*/*")) == ["model.int8.onnx", "model.onnx"]


def test_predict_with_a_model_that_is_not_a_classifier_is_refused(tmp_path, tiny_model_dir, capsys):
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"text": ["x"]}).to_csv(rows, index=False)
    assert main(["predict", "--model", str(tiny_model_dir), "--input", str(rows)]) == 1
    assert "is not a fine-tuned classifier" in capsys.readouterr().err


@pytest.mark.integration
def test_adaptflow_run_json_prints_one_object(tmp_path, tiny_model_dir):
    """The installed console script, in its own process with its own temporary Prefect server."""
    adaptflow = os.path.join(os.path.dirname(sys.executable), "adaptflow")
    command = [adaptflow, "run", "--json", "--params", str(REPO / "params.yaml"),
               "--set", f"model.name_or_path={tiny_model_dir}", "--set", "model.max_length=32",
               "--set", "train.epochs=1", "--set", "split.target_test_size=40",
               "--set", f"output.dir={tmp_path / 'out'}", "--set", "evaluation.baseline=true",
               "--set", "strategy.branch=joint_training", "--set", "strategy.joint_pseudo_labeling=false"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["branch"] == "joint_training" and result["decision"]["forced"] is True
    assert {"accuracy", "macro_f1"} <= set(result["metrics"]) and {"accuracy", "macro_f1"} <= set(
        result["baseline_metrics"])
    assert result["model_dir"].endswith("models/adapted")
    # stderr is a pipe, not a terminal: no bar updates, one progress line per ~10 % of each epoch
    assert "\r" not in done.stderr
    progress_lines = [line for line in done.stderr.splitlines() if "epoch 1/1: step " in line]
    assert len(progress_lines) == 20, done.stderr[-3000:]  # two fine-tunes of one epoch (>= 10 batches each): no
    # self-training round
    assert sum("(100%)" in line for line in progress_lines) == 2


@pytest.mark.parametrize(("thresholds", "decision", "branch"), [
    (["similarity.mmd2_max=10", "similarity.proxy_a_distance_max=2"], "similar", "joint_training"),
    (["similarity.mmd2_max=0"], "dissimilar", "shift_adaptation")], ids=["similar", "dissimilar"])
def test_similarity_json_has_measures_decision_branch_rationale(tmp_path, tiny_model_dir, capsys, thresholds,
                                                                decision, branch):
    code = main(["similarity", "--source", str(SAMPLE / "books.csv"), "--target", str(SAMPLE / "kitchen.csv"),
                 "--json", "--set", f"model.name_or_path={tiny_model_dir}", "--set", "similarity.sample_size=100",
                 "--set", f"similarity.cache_dir={tmp_path / 'cache'}",
                 *(arg for threshold in thresholds for arg in ("--set", threshold))])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"measures", "decision", "branch", "rationale"}
    assert (result["decision"], result["branch"]) == (decision, branch) and "MMD²" in result["rationale"]
    assert result["measures"]["n_source"] == 100


def test_watch_reports_each_changed_data_file_once(tmp_path, capsys):
    target = tmp_path / "kitchen.csv"
    target.write_bytes((SAMPLE / "kitchen.csv").read_bytes())
    args = ["watch", "--dry-run", "--state", str(tmp_path / "watch.json"), "--set", f"data.target={target}"]
    assert main(args) == 0
    assert capsys.readouterr().out.count("(new)") == 2  # source and target, seen for the first time
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == "no data file changed"
    target.write_bytes(target.read_bytes() + b"Nice lid. Works well.,positive,x\n")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{target}: md5 ") and out.count("md5") == 1
