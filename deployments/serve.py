"""Prefect deployments of the adaptflow flow: a scheduled retraining, the data watcher and an on-demand run.

    adaptflow-serve            # or: python -m deployments.serve

serves all three from this process against the Prefect API in PREFECT_API_URL (start one with `prefect server start`).
Runs triggered from the Prefect UI get a form for the whole typed config.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect import serve

from flows.adaptation import adaptation_flow

DEFAULT_CRON = "0 3 * * 1"  # Mondays 03:00


def build_deployments(cron: str = DEFAULT_CRON, params: Path | None = Path("params.yaml")):
    """The scheduled retraining deployment, the data watcher (every 10 minutes) and the on-demand one (no
    schedule), all running the config in `params` by default."""
    from deployments.deploy import SETTLE, WATCH_EVERY, config_parameters, data_trigger
    from flows.watching import watch_data_flow

    parameters = config_parameters(params if params is None or params.is_file() else None)
    scheduled = adaptation_flow.to_deployment(name="scheduled-retraining", cron=cron, triggers=[data_trigger()],
                                              description="Retrain and evaluate on the configured data weekly.",
                                              tags=["adaptflow", "scheduled"], parameters=parameters)
    on_demand = adaptation_flow.to_deployment(name="on-demand", description="Run with parameters from the UI.",
                                              tags=["adaptflow", "on-demand"], parameters=parameters)
    watcher = watch_data_flow.to_deployment(name="watch-data", interval=WATCH_EVERY, tags=["adaptflow", "watch"],
                                            description="Emit adaptflow.data.changed for changed, settled data.",
                                            parameters={**parameters, "settle_seconds": SETTLE})
    return scheduled, watcher, on_demand


def main() -> None:
    serve(*build_deployments(os.environ.get("ADAPTFLOW_CRON", DEFAULT_CRON),
                             Path(os.environ.get("ADAPTFLOW_PARAMS", "params.yaml"))))


if __name__ == "__main__":
    main()
