"""Reading stage outputs back: the predictions file that the registry's gate scores."""

from __future__ import annotations

import pandas as pd
import pytest

from flows.layout import Layout, read_predictions
from tasks.atomic import write_csv
from tasks.errors import DataError


def test_predicted_labels_that_look_like_formulas_come_back_as_the_model_said_them(tmp_path):
    layout = Layout(tmp_path)
    write_csv(layout.predictions, pd.DataFrame({
        "text": ["a", "b", "=c", "d", "e"], "label": ["-1", "+1", "=0", "@x", "-1"],
        "predicted": ["-1", "+1", "=0", "@x", "+1"], "score": [0.9] * 5,
        "split": ["target_test"] * 3 + ["source_test"] * 2}))

    assert pd.read_csv(layout.predictions, dtype=str)["predicted"][0] == "'-1", "the file stays safe to open"
    assert read_predictions(layout, ("-1", "+1", "=0", "@x")) == {"target_test": ["-1", "+1", "=0"],
                                                                  "source_test": ["@x", "+1"]}


def test_a_run_without_a_source_hold_out_reads_back_an_empty_source_split(tmp_path):
    layout = Layout(tmp_path)
    write_csv(layout.predictions, pd.DataFrame({"text": ["a"], "label": ["pos"], "predicted": ["neg"],
                                                "score": [0.6], "split": ["target_test"]}))

    assert read_predictions(layout, ("neg", "pos")) == {"target_test": ["neg"], "source_test": []}


def test_missing_predictions_name_the_stage_that_writes_them(tmp_path):
    with pytest.raises(DataError, match=r"predictions.csv: missing; run the evaluate stage first"):
        read_predictions(Layout(tmp_path), ("neg", "pos"))
