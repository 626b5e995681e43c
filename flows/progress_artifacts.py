"""A fine-tune's progress as a Prefect progress artifact, updated while it trains (only inside a Prefect task run:
the same stage code under `dvc repro` reports to its log alone)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)


def progress_artifact(key: str, description: str) -> Callable[[float], None] | None:
    """`update(share done)` for a progress artifact named `key` in the current task run, or None outside one.

    A Prefect task run has imported `prefect.context`; where nothing has (`adaptflow stage` under `dvc repro`, the
    benchmarks), no task run can be current, and Prefect is not imported for nothing (a second or more)."""
    context = sys.modules.get("prefect.context")
    if context is None or context.TaskRunContext.get() is None:
        return None
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    artifact_id = create_progress_artifact(0.0, key=key, description=description)

    def update(share: float) -> None:
        try:
            update_progress_artifact(artifact_id, progress=round(100 * min(share, 1.0), 1))
        except Exception as error:  # noqa: BLE001 (a lost progress update must never fail the training)
            log.debug("progress artifact %s not updated: %s", key, error)

    return update
