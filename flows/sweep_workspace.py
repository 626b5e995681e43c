"""Each sweep candidate's output directory, and each of its k-fold runs': the shared stages' outputs copied in,
and for a fold run the labelled target roles rewritten so that the fold is its validation split."""

from __future__ import annotations

import shutil
from pathlib import Path

from flows.layout import layout_of, read_role
from tasks.atomic import write_parquet
from tasks.config import AdaptflowConfig, apply_overrides, build_config
from tasks.folds import fold_count, held_out_folds

SHARED_DIRS = ("data", "validation", "similarity")  # what the shared upstream stages wrote


def share_upstream(base: AdaptflowConfig, candidate: AdaptflowConfig) -> None:
    """The shared stages' outputs, copied into the candidate's output directory (read by its later stages)."""
    source, target = layout_of(base).root, layout_of(candidate).root
    for name in SHARED_DIRS:
        if (target / name).exists():
            shutil.rmtree(target / name)
        shutil.copytree(source / name, target / name)


def fold_runs(base: AdaptflowConfig, candidate: AdaptflowConfig) -> list[AdaptflowConfig]:
    """The candidate's k-fold runs (folds 1..k-1; fold 0 is its own validation split), each under
    `<candidate>/folds/<fold>/` with the shared outputs and its fold as `target_validation`."""
    layout = layout_of(base)
    splits = held_out_folds(read_role(layout, "target_labeled"), read_role(layout, "target_validation"),
                            fold_count(base.split.validation_fraction), base.split.seed)
    runs = []
    for fold, (labelled, held_out) in enumerate(splits, start=1):
        directory = Path(candidate.output.dir) / "folds" / str(fold)
        config = build_config(apply_overrides(candidate.model_dump(mode="json"), [f"output.dir={directory}"]),
                              origin=f"fold {fold} of {candidate.output.dir}")
        share_upstream(base, config)
        fold_layout = layout_of(config)
        write_parquet(fold_layout.role("target_labeled"), labelled)
        write_parquet(fold_layout.role("target_validation"), held_out)
        runs.append(config)
    return runs
