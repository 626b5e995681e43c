"""Target metrics and the report."""

from __future__ import annotations

import pytest

from tasks.evaluation import compute_metrics, gain, plot_confusion_matrix
from tasks.report import mermaid_graph, run_markdown


def test_metrics_on_a_known_prediction():
    metrics = compute_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ("a", "b"))
    assert metrics["accuracy"] == 0.75
    assert metrics["confusion_matrix"] == [[1, 1], [0, 2]]
    assert metrics["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_gain_is_relative_to_the_baseline():
    assert gain({"accuracy": 0.9, "macro_f1": 0.8}, {"accuracy": 0.85, "macro_f1": 0.8}) == pytest.approx(
        {"accuracy": 0.05, "macro_f1": 0.0})
    assert gain({"accuracy": 0.9, "macro_f1": 0.8}, None) == {}


def test_confusion_matrix_png(tmp_path):
    path = plot_confusion_matrix([[3, 1], [0, 4]], ["neg", "pos"], "test", tmp_path / "cm.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_the_graph_marks_the_path_taken():
    assert "class A,B,C,E,F taken" in mermaid_graph("joint_training")
    assert "class A,B,D,E,F taken" in mermaid_graph("shift_adaptation")
    assert "class A,B,G,E,F taken" in mermaid_graph("few_shot")
    metrics = {"accuracy": 0.9, "macro_f1": 0.9, "n": 10}
    report = run_markdown({"branch": "joint_training", "decision": {"rationale": "because"}, "validation": "ok",
                           "metrics": metrics, "baseline_metrics": {"accuracy": 0.8, "macro_f1": 0.7},
                           "model_dir": "m"})
    assert "| accuracy | 0.9000 | 0.8000 | +0.1000 |" in report
