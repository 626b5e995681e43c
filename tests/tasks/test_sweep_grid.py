"""A sweep's grid: axes from `--set KEY=V1,V2`, every combination a full config, the pick on selection scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.config import AdaptflowConfig
from tasks.errors import ConfigError
from tasks.sweep_grid import expand, parse_axes, pick


def test_axes_are_the_comma_separated_values_of_each_key():
    assert parse_axes(["train.learning_rate=1e-4, 3e-4", "train.epochs=2"]) == {
        "train.learning_rate": ["1e-4", "3e-4"], "train.epochs": ["2"]}
    with pytest.raises(ConfigError, match="expected KEY=V1,V2"):
        parse_axes(["train.learning_rate"])
    with pytest.raises(ConfigError, match="given twice"):
        parse_axes(["train.epochs=1", "train.epochs=2"])


def test_every_combination_times_every_seed_is_a_validated_config_in_its_own_directory():
    base = AdaptflowConfig()
    candidates = expand(base, parse_axes(["train.learning_rate=1e-4,3e-4", "strategy.branch=auto,joint_training"]), [0, 1])
    assert len(candidates) == 8
    first = candidates[0]
    assert first.overrides == {"train.learning_rate": "1e-4", "strategy.branch": "auto", "train.seed": "0"}
    assert (first.config.train.learning_rate, first.config.train.seed) == (1e-4, 0)
    assert first.config.output.dir == Path(base.output.dir) / "sweep" / first.id
    assert base.evaluation.baseline and not first.config.evaluation.baseline  # no per-candidate baseline
    assert len({candidate.config.output.dir for candidate in candidates}) == 8
    with pytest.raises(ConfigError, match="train.epochs"):
        expand(base, parse_axes(["train.epochs=-1"]))


def test_the_pick_is_the_best_selection_score_and_a_failed_candidate_never_wins():
    assert pick({"a": 0.8, "b": 0.9, "c": None}) == "b"
    assert pick({"a": 0.9, "b": 0.9}) == "a"  # a tie goes to the first in grid order
    with pytest.raises(ConfigError, match="no sweep candidate finished"):
        pick({"a": None})
