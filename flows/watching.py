"""New target data starts retraining: `adaptflow watch` hashes the config's data files (DVC md5) and, for each one
that changed since the last look, emits the Prefect event `adaptflow.data.changed`, which the scheduled-retraining
deployment's trigger reacts to."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.atomic import write_json
from tasks.config import AdaptflowConfig
from tasks.provenance import dvc_md5

DATA_CHANGED = "adaptflow.data.changed"
DEFAULT_STATE = Path(".adaptflow-cache/watch.json")


def changed_files(config: AdaptflowConfig, state_file: Path = DEFAULT_STATE) -> list[dict[str, str | None]]:
    """The input files whose md5 differs from the one recorded in `state_file` (all of them the first time);
    records the new hashes."""
    from flows.layout import input_files

    try:
        seen = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        seen = {}
    current = {str(Path(path).resolve()): dvc_md5(Path(path)) for path in set(input_files(config).values())}
    changes = [{"path": path, "md5": md5, "previous": seen.get(path)} for path, md5 in sorted(current.items())
               if seen.get(path) != md5]
    write_json(state_file, {**seen, **current})
    return changes


def emit_changes(changes: list[dict[str, str | None]]) -> int:
    """One `adaptflow.data.changed` event per changed file; returns how many were emitted."""
    from prefect.events import emit_event

    for change in changes:
        emit_event(event=DATA_CHANGED, resource={"prefect.resource.id": f"adaptflow.data.{change['path']}",
                                                 "adaptflow.md5": str(change["md5"])},
                   payload=dict(change))
    return len(changes)
