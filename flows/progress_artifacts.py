"""A fine-tune's progress as a Prefect progress artifact, updated while it trains (only inside a Prefect task run:
the same stage code under `dvc repro` reports to its log alone)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
# The training waits for each update (a call to the Prefect API, 7 ms on the ephemeral one, and the server's work
# beside the training on a small CPU): at most one every 2 s, and always the finished 100 %. Training ticks every
# ~10 % of an epoch, ~90 times in a flow run of the embedded default, which cost the fine-tunes ~0.7 s.
MIN_INTERVAL_S = 2.0


def progress_artifact(key: str, description: str) -> Callable[[float], None] | None:
    """`update(share done)` for a progress artifact named `key` in the current task run, or None outside one; an
    update within `MIN_INTERVAL_S` of the last one sent is dropped, unless it is the end (share 1.0).

    A Prefect task run has imported `prefect.context`; where nothing has (`adaptflow stage` under `dvc repro`, the
    benchmarks), no task run can be current, and Prefect is not imported for nothing (a second or more)."""
    context = sys.modules.get("prefect.context")
    if context is None or context.TaskRunContext.get() is None:
        return None
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    artifact_id = create_progress_artifact(0.0, key=key, description=description)
    posted = [-float("inf")]  # when the last update was sent

    def update(share: float) -> None:
        now = time.monotonic()
        if share < 1.0 and now - posted[0] < MIN_INTERVAL_S:
            return
        posted[0] = now
        try:
            update_progress_artifact(artifact_id, progress=round(100 * min(share, 1.0), 1))
        except Exception as error:  # noqa: BLE001 (a lost progress update must never fail the training)
            log.debug("progress artifact %s not updated: %s", key, error)

    return update
