"""A sweep's candidates: the grid of `--set KEY=V1,V2` axes (and seeds) expanded into full configs, and the pick.

    expand(base, parse_axes(["train.learning_rate=1e-4,3e-4"]), seeds=[0, 1])  ->  4 candidates

Each candidate is the base config with its overrides, writing under `<output.dir>/sweep/<id>`, without the
source-only baseline (`evaluation.baseline: false`: the pick compares candidates with each other, and the gate
compares the winner with the champion). The winner is picked
on the selection score (labelled target data that is not the test set), never on the test score.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from tasks.config import AdaptflowConfig, apply_overrides, build_config
from tasks.errors import ConfigError


@dataclass(frozen=True)
class Candidate:
    """One point of the grid: a short id, the overrides that make it, and its full config."""

    id: str
    overrides: dict[str, str]
    config: AdaptflowConfig


def parse_axes(settings: list[str]) -> dict[str, list[str]]:
    """`["train.learning_rate=1e-4,3e-4", "train.epochs=2"]` -> {key: [values]} (one axis per key, in order)."""
    axes: dict[str, list[str]] = {}
    for text in settings:
        key, sep, values = text.partition("=")
        choices = [value.strip() for value in values.split(",") if value.strip()]
        if not sep or not key.strip() or not choices:
            raise ConfigError(f"--set {text!r}: expected KEY=V1,V2,..., e.g. --set train.learning_rate=1e-4,3e-4")
        if key.strip() in axes:
            raise ConfigError(f"--set {key.strip()}: given twice; list every value once: --set {key.strip()}=V1,V2")
        axes[key.strip()] = choices
    return axes


def expand(base: AdaptflowConfig, axes: dict[str, list[str]], seeds: list[int] | None = None) -> list[Candidate]:
    """Every combination of the axes (times the seeds, set as `train.seed`), each validated into a config."""
    if seeds:
        if "train.seed" in axes:
            raise ConfigError("--seeds and --set train.seed=...: give the seeds once")
        axes = {**axes, "train.seed": [str(seed) for seed in seeds]}
    raw = base.model_dump(mode="json")
    candidates = []
    for values in itertools.product(*axes.values()) if axes else [()]:
        overrides = dict(zip(axes, values, strict=True))
        identity = "_".join(f"{key.rsplit('.', 1)[-1]}-{value}" for key, value in overrides.items()) or "base"
        identity = re.sub(r"[^A-Za-z0-9._-]+", "-", identity)
        settings = [f"{key}={value}" for key, value in overrides.items()]
        settings += [f"output.dir={Path(base.output.dir) / 'sweep' / identity}", "evaluation.baseline=false"]
        config = build_config(apply_overrides(raw, settings), origin=f"sweep candidate {identity}")
        candidates.append(Candidate(identity, overrides, config))
    return candidates


def pick(scores: dict[str, float | None]) -> str:
    """The candidate with the best selection score (ties: the first in grid order); failed ones (None) never win."""
    scored = [(score, -order, name) for order, (name, score) in enumerate(scores.items()) if score is not None]
    if not scored:
        raise ConfigError("no sweep candidate finished: nothing to choose from")
    return max(scored)[2]
