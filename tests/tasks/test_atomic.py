"""Formula-safe CSVs and reading their values back."""

from __future__ import annotations

import pandas as pd

from tasks.atomic import restore_known, write_csv


def test_cells_that_a_spreadsheet_would_run_are_quoted_and_known_values_restored(tmp_path):
    path = write_csv(tmp_path / "rows.csv", pd.DataFrame({"text": ["=HYPERLINK(1)", "-1", "plain", "'-1"]}))
    read = pd.read_csv(path, dtype=str)["text"].tolist()

    assert read == ["'=HYPERLINK(1)", "'-1", "plain", "'-1"]
    assert restore_known(read, {"-1", "plain"}) == ["'=HYPERLINK(1)", "-1", "plain", "-1"]
