"""Deploy the adaptflow flow to a Prefect work pool (what `prefect deploy` does, from Python):

    adaptflow-deploy --pool adaptflow [--params params.yaml] [--cron "0 3 * * 1"]

Both deployments run what the params file says: it is read and validated here and set as their default parameters
(the UI's Custom run form starts from it), the same file `adaptflow watch` reads. Edit it, deploy again.

- `scheduled-retraining`: on the cron schedule, and whenever `adaptflow watch` reports new data (the Prefect event
  `adaptflow.data.changed` triggers it);
- `on-demand`: no schedule; start it from the UI (Run > Custom run edits the whole config) or the API.
They go to the work queues `retraining` and `on-demand` of the pool. A worker runs them:
`prefect worker start --pool adaptflow` (a `process` pool runs each flow run in a subprocess in this project
directory; add `--work-queue on-demand` to serve one queue only).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from uuid import UUID

from deployments.serve import DEFAULT_CRON

PROJECT = Path(__file__).resolve().parents[1]
ENTRYPOINT = "flows/adaptation.py:adaptation_flow"


def data_trigger():
    """Start retraining when `adaptflow watch` emits `adaptflow.data.changed` for any watched file."""
    from prefect.events import DeploymentEventTrigger

    from flows.watching import DATA_CHANGED

    return DeploymentEventTrigger(name="new-target-data", expect={DATA_CHANGED},
                                  match={"prefect.resource.id": "adaptflow.data.*"})


def config_parameters(params: Path | None) -> dict:
    """The deployments' default parameters: the validated config of `params` (None: the code's defaults)."""
    from tasks.config import load_config

    return {"config": load_config(params).model_dump(mode="json")}


def deploy(pool: str, cron: str = DEFAULT_CRON, project: Path = PROJECT,
           params: Path | None = Path("params.yaml")) -> dict[str, UUID]:
    """Create (or update) both deployments on `pool`, running the flow from `project`, with the config in
    `params` as their default parameters (what scheduled and triggered runs use, and the UI's run form starts
    from)."""
    from prefect import flow

    source = flow.from_source(source=str(project), entrypoint=ENTRYPOINT)
    common = {"work_pool_name": pool, "build": False, "push": False, "print_next_steps": False,
              "ignore_warnings": True, "parameters": config_parameters(params)}
    return {
        "scheduled-retraining": source.deploy(name="scheduled-retraining", cron=cron, triggers=[data_trigger()],
                                              work_queue_name="retraining",
                                              description="Retrain on schedule and when new target data arrives.",
                                              tags=["adaptflow", "scheduled"], **common),
        "on-demand": source.deploy(name="on-demand", work_queue_name="on-demand",
                                   description="Run with parameters from the UI.",
                                   tags=["adaptflow", "on-demand"], **common),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="adaptflow-deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", required=True, help="work pool (create it: prefect work-pool create NAME "
                        "--type process)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="the config both deployments run (default params.yaml)")
    parser.add_argument("--cron", default=DEFAULT_CRON)
    args = parser.parse_args()
    from tasks.errors import AdaptflowError

    try:
        deployed = deploy(args.pool, args.cron, params=args.params)
    except AdaptflowError as error:
        raise SystemExit(f"adaptflow-deploy: error: {error}") from None
    for name, deployment_id in deployed.items():
        print(f"adaptflow/{name}: {deployment_id} (default parameters: {args.params})")


if __name__ == "__main__":
    main()
