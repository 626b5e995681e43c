"""Deploy the adaptflow flow to a Prefect work pool (what `prefect deploy` does, from Python):

    adaptflow-deploy --pool adaptflow [--params params.yaml] [--cron "0 3 * * 1"] [--watch-every 600] [--image IMG]

Every deployment runs what the params file says: it is read and validated here and set as their default parameters
(the UI's Custom run form starts from it). Edit it, deploy again.

- `scheduled-retraining`: on the cron schedule, and whenever new data arrives (the Prefect event
  `adaptflow.data.changed` triggers it);
- `watch-data`: every `--watch-every` seconds (10 minutes), hashes the params file's data files and emits
  `adaptflow.data.changed` for each that changed and stopped changing (`--settle` seconds without a write), so
  retraining on new data needs no one to run anything; one run at a time, a late one is cancelled;
- `on-demand`: no schedule; start it from the UI (Run > Custom run edits the whole config) or the API.
They go to the work queues `retraining`, `watch` and `on-demand` of the pool. A worker runs them:
`prefect worker start --pool adaptflow` (a `process` pool runs each flow run in a subprocess in this project
directory; add `--work-queue NAME` to serve some queues only).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from uuid import UUID

from deployments.serve import DEFAULT_CRON

PROJECT = Path(__file__).resolve().parents[1]
ENTRYPOINT = "flows/adaptation.py:adaptation_flow"
WATCH_ENTRYPOINT = "flows/watching.py:watch_data_flow"
WATCH_EVERY, SETTLE = 600, 60.0  # seconds between looks at the data; seconds a file must go unwritten


def data_trigger():
    """Start retraining when the watcher (or `adaptflow watch`) emits `adaptflow.data.changed` for a data file."""
    from prefect.events import DeploymentEventTrigger

    from flows.watching import DATA_CHANGED

    return DeploymentEventTrigger(name="new-target-data", expect={DATA_CHANGED},
                                  match={"prefect.resource.id": "adaptflow.data.*"})


def config_parameters(params: Path | None) -> dict:
    """The deployments' default parameters: the validated config of `params` (None: the code's defaults)."""
    from tasks.config import load_config

    return {"config": load_config(params).model_dump(mode="json")}


def deploy(pool: str, cron: str = DEFAULT_CRON, project: Path = PROJECT, params: Path | None = Path("params.yaml"),
           watch_every: float = WATCH_EVERY, settle: float = SETTLE, watch_state: Path | None = None,
           image: str | None = None) -> dict[str, UUID]:
    """Create (or update) the three deployments on `pool` with the config in `params` as their default parameters
    (what scheduled and triggered runs use, and the UI's run form starts from). Without `image` (a process pool),
    flow runs start in `project`; with `image` (a Docker or Kubernetes pool), they run the image's own copy of the
    code, found by module path, with no pull step. `watch_state`: where the watcher records the hashes it has seen
    (default `.adaptflow-cache/watch.json` in the working directory)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    parameters = config_parameters(params)
    watched = {**parameters, "settle_seconds": settle, **({"state_file": str(watch_state)} if watch_state else {})}
    specs = {
        "watch-data": (WATCH_ENTRYPOINT, {
            "interval": watch_every, "work_queue_name": "watch", "tags": ["adaptflow", "watch"], "parameters": watched,
            "description": "Look at the data files; emit adaptflow.data.changed for each that changed and settled.",
            "concurrency_limit": ConcurrencyLimitConfig(limit=1,
                                                        collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)}),
        "scheduled-retraining": (ENTRYPOINT, {
            "cron": cron, "triggers": [data_trigger()], "work_queue_name": "retraining", "parameters": parameters,
            "description": "Retrain on schedule and when new target data arrives.", "tags": ["adaptflow", "scheduled"]}),
        "on-demand": (ENTRYPOINT, {
            "work_queue_name": "on-demand", "parameters": parameters, "description": "Run with parameters from the UI.",
            "tags": ["adaptflow", "on-demand"]}),
    }
    return _in_image(pool, image, specs) if image else _from_project(pool, project, specs)


def _from_project(pool: str, project: Path, specs: dict[str, tuple[str, dict]]) -> dict[str, UUID]:
    from prefect import flow

    return {name: flow.from_source(source=str(project), entrypoint=entrypoint).deploy(
        name=name, work_pool_name=pool, build=False, push=False, print_next_steps=False, ignore_warnings=True,
        **options) for name, (entrypoint, options) in specs.items()}


def _in_image(pool: str, image: str, specs: dict[str, tuple[str, dict]]) -> dict[str, UUID]:
    import importlib

    from prefect import deploy as deploy_all
    from prefect.deployments.runner import EntrypointType

    def flow_of(entrypoint: str):
        path, name = entrypoint.split(":")
        return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)

    deployments = [flow_of(entrypoint).to_deployment(name=name, entrypoint_type=EntrypointType.MODULE_PATH, **options)
                   for name, (entrypoint, options) in specs.items()]
    ids = deploy_all(*deployments, work_pool_name=pool, image=image, build=False, push=False,
                     print_next_steps_message=False, ignore_warnings=True)
    return dict(zip(specs, ids, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(prog="adaptflow-deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", required=True, help="work pool (create it: prefect work-pool create NAME "
                        "--type process)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="the config every deployment runs (default params.yaml)")
    parser.add_argument("--cron", default=DEFAULT_CRON)
    parser.add_argument("--image", help="a Docker or Kubernetes pool: the project image the flow runs use, with its own "
                        "copy of the code (docker build -t adaptflow:latest .); default: a process pool running in "
                        "this project directory")
    parser.add_argument("--watch-every", type=float, default=WATCH_EVERY, metavar="SECONDS",
                        help=f"seconds between the watcher's looks at the data files (default {WATCH_EVERY})")
    parser.add_argument("--settle", type=float, default=SETTLE, metavar="SECONDS",
                        help=f"a data file must go this long unwritten before it counts as new data (default {SETTLE:g})")
    args = parser.parse_args()
    from tasks.errors import AdaptflowError

    try:
        deployed = deploy(args.pool, args.cron, params=args.params, watch_every=args.watch_every, settle=args.settle,
                          image=args.image)
    except AdaptflowError as error:
        raise SystemExit(f"adaptflow-deploy: error: {error}") from None
    for name, deployment_id in deployed.items():
        print(f"{name}: {deployment_id} (default parameters: {args.params})")


if __name__ == "__main__":
    main()
