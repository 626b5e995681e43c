"""Progress of an epoch: a live bar on a terminal only; elsewhere one log line per ~10 % of the epoch."""

from __future__ import annotations

import logging

import pytest

from tasks import progress
from tasks.progress import EpochProgress


def _run(total: int, on_tick=None) -> None:
    shown = EpochProgress(total, "epoch 1/2", True, on_tick)
    for step in range(1, total + 1):
        shown.update(step, 16 * step, 0.5)
    shown.close()


@pytest.mark.parametrize(("batches", "lines"), [(25, 10), (100, 10), (7, 7), (1, 1)])
def test_away_from_a_terminal_an_epoch_logs_one_line_per_tenth(monkeypatch, caplog, batches, lines):
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    with caplog.at_level(logging.INFO, logger="tasks.training"):
        _run(batches)
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == lines
    assert logged[-1].startswith(f"epoch 1/2: step {batches}/{batches} (100%), loss 0.5000, ")
    assert "examples/s, ETA 0:00" in logged[-1]


def test_on_a_terminal_a_live_bar_shows_and_nothing_is_logged(monkeypatch, caplog, capsys):
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    with caplog.at_level(logging.INFO, logger="tasks.training"):
        _run(25)
    assert caplog.records == [] and "epoch 1/2" in capsys.readouterr().err


def test_each_tenth_reports_the_share_of_the_epoch_done(monkeypatch):
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    shares: list[float] = []
    _run(20, shares.append)
    assert shares == [step / 20 for step in range(2, 21, 2)]
