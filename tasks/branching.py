"""The branch decision (a value and its reason) and the joint-training set it leads to."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

DEFAULT_BRANCH = "joint_training"


@dataclass(frozen=True)
class Decision:
    """Which branch runs, whether the domains were judged similar, and the rationale that is logged."""

    branch: str
    similar: bool | None
    rationale: str
    forced: bool
    measures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Decision:
        return cls(**raw)


def decide_branch(setting: str) -> Decision:
    """The branch for `strategy.branch` = `setting`.

    No domain-shift measure exists yet, so `auto` falls back to the default branch and the rationale says so.
    """
    if setting != "auto":
        return Decision(setting, None, f"strategy.branch is set to {setting}; no similarity decision was made",
                        forced=True)
    return Decision(DEFAULT_BRANCH, None, "no domain-shift measure is implemented yet, so the similarity check "
                    f"did not decide; the default branch {DEFAULT_BRANCH} ran", forced=False)


def build_joint_training_set(source: pd.DataFrame, target: pd.DataFrame, target_weight: float | None) -> pd.DataFrame:
    """Source and labelled target rows together, with a `domain` and a per-sample `weight` column.

    With `target_weight` None each domain gets the same total weight (target rows are up-weighted by
    n_source / n_target); otherwise target rows get `target_weight` and source rows 1.
    """
    source_part = source[["text", "label"]].assign(domain="source", weight=1.0)
    if target.empty:
        return source_part.reset_index(drop=True)
    weight = target_weight if target_weight is not None else len(source) / len(target)
    target_part = target[["text", "label"]].assign(domain="target", weight=float(weight))
    return pd.concat([source_part, target_part], ignore_index=True)
