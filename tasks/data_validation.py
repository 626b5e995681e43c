"""Validate every data role of a run: derived text/label facts, the GX suite, leakage, and the summary."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.batching import tokenize
from tasks.config import ValidationConfig
from tasks.gx_suite import run_checks
from tasks.roles import DataRoles
from tasks.text_checks import derive_label_columns, derive_text_columns, mark_leaked
from tasks.validation import LABELLED, build_checks, summarise

REQUIRED = ("source_train", "target_test")
TRAINING_ROLES = ("source_train", "source_test", "target_labeled", "target_validation", "target_unlabeled")


def validate_frames(frames: dict[str, pd.DataFrame], config: ValidationConfig, labels: tuple[str, ...],
                    files: dict[str, str], tokenizer=None, max_length: int | None = None,
                    leaked: pd.Series | None = None, docs_dir: Path | None = None) -> dict[str, Any]:
    """Run the suite on each role's frame (roles with no rows are skipped unless required) and summarise."""
    started = time.perf_counter()
    derived: dict[str, pd.DataFrame] = {}
    checks = {}
    truncated: dict[str, float] = {}
    for role, frame in frames.items():
        if frame.empty and (role not in REQUIRED or role not in files):  # no source file: no source role
            continue
        counts = [len(ids) for ids in tokenize(tokenizer, frame["text"].fillna("").astype(str).tolist(), 10**9)] \
            if tokenizer is not None and max_length else None
        table = derive_text_columns(frame, counts, max_length)
        if role in LABELLED and "label" in frame.columns:
            table = derive_label_columns(table)
        if role == "target_test":
            table["_leaked"] = leaked.to_numpy() if leaked is not None else False
        if counts is not None:
            truncated[role] = round(float(table["_truncated"].mean()), 4) if len(table) else 0.0
        derived[role] = table
        checks[role] = build_checks(role, config, labels, counts is not None)
    results = run_checks(derived, checks, docs_dir)
    extra: dict[str, Any] = {"rows": {role: len(frame) for role, frame in derived.items()}}
    if truncated:
        extra["truncated_share"] = truncated
    if docs_dir is not None:
        extra["data_docs"] = str(docs_dir / "index.html")
    return summarise(results, files, time.perf_counter() - started, extra)


def validate_roles(roles: DataRoles, config: ValidationConfig, files: dict[str, str], tokenizer=None,
                   max_length: int | None = None, docs_dir: Path | None = None) -> tuple[dict[str, Any], DataRoles]:
    """Validate all roles; with `drop_leaked`, leaked test rows are dropped (and counted) instead of failing."""
    leaked = mark_leaked(roles.target_test, [getattr(roles, role)["text"] for role in TRAINING_ROLES])
    if config.drop_leaked:
        severity = {**config.severity, "leakage": "warning"}
        config = config.model_copy(update={"severity": severity})
    summary = validate_frames(roles.frames(), config, roles.labels, files, tokenizer, max_length, leaked, docs_dir)
    summary["leaked"] = int(leaked.sum())
    if config.drop_leaked and leaked.any():
        roles = replace(roles, target_test=roles.target_test[~leaked.to_numpy()].reset_index(drop=True))
        summary["dropped_leaked"] = int(leaked.sum())
    return summary, roles


def role_files(data) -> dict[str, str]:
    """Which file each role came from, for messages (the source roles only when there is a source file)."""
    target = str(data.target) if data.target else ""
    return {
        **({"source_train": str(data.source), "source_test": str(data.source)} if data.has_source else {}),
        "target_labeled": str(data.target_labeled or target), "target_validation": str(data.target_labeled or target),
        "target_unlabeled": str(data.target_unlabeled or target), "target_test": str(data.target_test or target),
    }
