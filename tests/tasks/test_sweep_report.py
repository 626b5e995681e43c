"""A sweep's results for people: one row per candidate with the winner marked, and a plot of its scores."""

from __future__ import annotations

from tasks.sweep_report import plot_scores, table_rows

SUMMARY = {"winner": "lr-2", "candidates": [
    {"id": "lr-1", "overrides": {"train.learning_rate": "1e-5"}, "selection_macro_f1": 0.81234, "test_macro_f1": 0.9,
     "selection_n": 50, "selection_folds": 5, "branch": "joint_training", "worker": "tcp://a", "seconds": 12.0},
    {"id": "lr-2", "overrides": {"train.learning_rate": "2e-5"}, "selection_macro_f1": 0.85, "test_macro_f1": 0.88,
     "selection_n": 10, "selection_folds": 1, "branch": "joint_training", "worker": "tcp://b", "seconds": 11.0},
    {"id": "lr-3", "overrides": {"train.learning_rate": "5e-5"}, "selection_macro_f1": None, "error": "killed"}]}


def test_each_candidate_is_a_row_with_its_settings_scores_and_whether_it_won():
    rows = table_rows(SUMMARY)
    assert [row["candidate"] for row in rows] == ["lr-1", "lr-2", "lr-3"]
    assert rows[0]["train.learning_rate"] == "1e-5" and rows[0]["selection_macro_f1"] == 0.8123
    assert [row["winner"] for row in rows] == [False, True, False]
    assert [row["selected_on"] for row in rows] == ["5 folds (n=50)", "validation (n=10)", ""]
    assert (rows[2]["selection_macro_f1"], rows[2]["error"]) == (None, "killed")


def test_the_plot_is_a_png_even_with_a_failed_candidate(tmp_path):
    path = plot_scores(SUMMARY, tmp_path / "scores.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob("*.tmp*"))
