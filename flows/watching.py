"""New target data starts retraining with no one in the loop.

The `watch-data` deployment (created by `adaptflow-deploy` beside the other two, every 10 minutes by default) runs
`watch_data_flow`: it hashes the config's data files (DVC md5) and, for each one that changed since the last look and
has stopped changing, emits the Prefect event `adaptflow.data.changed`, which the scheduled-retraining deployment's
trigger reacts to. A file modified less than `settle_seconds` ago is being written (a copy in progress): it is left
for a later look, so a half-copied file never starts a run. `adaptflow watch` does one look by hand (or from cron).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prefect import flow

from tasks.atomic import write_json
from tasks.config import AdaptflowConfig
from tasks.provenance import dvc_md5

DATA_CHANGED = "adaptflow.data.changed"
DEFAULT_STATE = Path(".adaptflow-cache/watch.json")
Change = dict[str, str | None]


def changed_files(config: AdaptflowConfig, state_file: Path = DEFAULT_STATE, settle_seconds: float = 0.0,
                  first_look_is_change: bool = True) -> tuple[list[Change], list[str]]:
    """(changes, unsettled): the input files whose md5 differs from the one recorded in `state_file`, and those
    modified less than `settle_seconds` ago (not hashed, not recorded: looked at again next time). A file seen for the
    first time is a change when `first_look_is_change`, else its hash is only recorded. Records the new hashes."""
    from flows.layout import input_files

    try:
        seen = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        seen = {}
    paths = sorted({str(Path(path).resolve()) for path in input_files(config).values()})
    unsettled = [path for path in paths if _modified_ago(Path(path)) < settle_seconds]
    current = {path: dvc_md5(Path(path)) for path in paths if path not in unsettled}
    changes: list[Change] = [{"path": path, "md5": md5, "previous": seen.get(path)} for path, md5 in current.items()
                             if seen.get(path) != md5 and (first_look_is_change or path in seen)]
    write_json(state_file, {**seen, **current})
    return changes, unsettled


def _modified_ago(path: Path) -> float:
    """Seconds since the file (or, for a directory, any file in it) was last modified."""
    stamps = [path.stat().st_mtime] + ([item.stat().st_mtime for item in path.rglob("*")] if path.is_dir() else [])
    return time.time() - max(stamps)


def emit_changes(changes: list[Change]) -> int:
    """One `adaptflow.data.changed` event per changed file; returns how many were emitted."""
    from prefect.events import emit_event

    for change in changes:
        emit_event(event=DATA_CHANGED, resource={"prefect.resource.id": f"adaptflow.data.{change['path']}",
                                                 "adaptflow.md5": str(change["md5"])},
                   payload=dict(change))
    return len(changes)


@flow(name="adaptflow-watch-data", log_prints=True, timeout_seconds=3600)
def watch_data_flow(config: AdaptflowConfig = AdaptflowConfig(), state_file: str = str(DEFAULT_STATE),
                    settle_seconds: float = 60.0) -> dict[str, Any]:
    """One look at the data files of `config`: emit `adaptflow.data.changed` for each that changed and settled.
    The first look at a file records its hash and starts nothing."""
    changes, unsettled = changed_files(config, Path(state_file), settle_seconds, first_look_is_change=False)
    for path in unsettled:
        print(f"{path}: modified under {settle_seconds:g} s ago, still being written; looking again next time")
    for change in changes:
        print(f"{change['path']}: md5 {change['previous']} -> {change['md5']}")
    emitted = emit_changes(changes)
    print(f"emitted {emitted} {DATA_CHANGED} event(s)" if emitted else "no settled data file changed")
    return {"changes": changes, "unsettled": unsettled, "emitted": emitted}
