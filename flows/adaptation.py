"""The Prefect flow: validate -> similarity -> (joint training | shift adaptation) -> fine-tune -> evaluate -> register.

Each Prefect task is a thin wrapper around a stage in `flows.stages`, the same code `dvc repro` runs. The flow's edges
log each stage's outputs to one MLflow run, opened before any work (an unreachable server fails the flow at once) and
ended FINISHED, FAILED or KILLED to match how the flow ended.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows import stages
from flows.caching import StageCache
from tasks.config import AdaptflowConfig
from tasks.errors import AdaptflowError
from tasks.report import run_markdown
from tasks.validation import failure_line, summary_markdown

log = logging.getLogger(__name__)


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O hiccups, not problems with the user's data or config (those fail the same way every time)."""
    try:
        state.result()
    except AdaptflowError:
        return False
    except Exception:
        return True
    return False


# Stages are cached on their inputs (flows/caching.py): a re-run with unchanged data, params and code reuses them.
CACHED = {"persist_result": True, "cache_expiration": None}
IO_RETRIES = {"retries": 2, "retry_delay_seconds": 5, "retry_condition_fn": _transient}


@task(name="validate-data", **CACHED, **IO_RETRIES)
def validate_data(config: AdaptflowConfig) -> dict[str, Any]:
    return stages.validate(config)


def _publish_validation(config: AdaptflowConfig) -> None:
    path = stages.layout_of(config).validation
    if path.is_file():
        summary = json.loads(path.read_text(encoding="utf-8"))
        create_markdown_artifact(summary_markdown(summary), key="adaptflow-validation",
                                 description="Data validation summary (Great Expectations)")


@task(name="check-similarity", **CACHED, **IO_RETRIES)
def check_similarity(config: AdaptflowConfig) -> dict[str, Any]:
    return stages.similarity(config).as_dict()


@task(name="prepare-training-set", **CACHED)
def prepare_training_set(config: AdaptflowConfig) -> dict[str, Any]:
    return stages.prepare(config)


@task(name="fine-tune", **CACHED)
def fine_tune(config: AdaptflowConfig, which: str) -> dict[str, Any]:
    return stages.train(config, which)


@task(name="evaluate-target", **CACHED)
def evaluate_target(config: AdaptflowConfig) -> dict[str, Any]:
    return stages.evaluate(config)


def _prefect_context() -> dict[str, str | None]:
    from prefect.runtime import flow_run

    return {"adaptflow.trigger": "prefect", "prefect.flow_run_id": flow_run.id,
            "prefect.flow_run_name": flow_run.name, "prefect.flow_run_url": flow_run.ui_url,
            "prefect.deployment_id": _deployment_id()}


def _deployment_id() -> str | None:
    from prefect.runtime import deployment

    return deployment.id


@flow(name="adaptflow", log_prints=True, timeout_seconds=12 * 3600, persist_result=True)
def adaptation_flow(config: AdaptflowConfig = AdaptflowConfig()) -> dict[str, Any]:
    """Adapt the foundation model in `config.model` to the target domain in `config.data`."""
    tracker = None
    if config.tracking.enabled:
        from tasks.tracking import RunTracker

        context = _prefect_context()
        tracker = RunTracker.open(config, stages.input_files(config), context, run_name=context["prefect.flow_run_name"])
    try:
        summary = _pipeline(config, tracker)
    except BaseException as error:
        if tracker is not None:
            _log_failure(tracker, config)
            tracker.close(stages.run_status(error))
        raise
    if tracker is not None:
        tracker.close("FINISHED")
        summary["tracking_seconds"] = round(tracker.seconds, 3)
    return summary


def _pipeline(config: AdaptflowConfig, tracker: Any) -> dict[str, Any]:
    def track(stage: str) -> None:
        if tracker is not None:
            stages.track(tracker, config, stage)

    cache = StageCache(config)
    try:
        validation = cache.run(validate_data, "validate")
    finally:
        _publish_validation(config)
    track("validate")
    print(f"data validation: {validation['status']} ({validation['errors']} errors, {validation['warnings']} "
          f"warnings, {validation['seconds']} s)")
    for failure in validation["failures"]:
        print(failure_line(failure))
    decision = cache.run(check_similarity, "similarity")
    track("similarity")
    print(f"branch: {decision['branch']} - {decision['rationale']}")
    prepared = cache.run(prepare_training_set, "prepare")
    track("prepare")
    print(f"training set: {prepared['rows']} rows; strategies: {', '.join(prepared['strategies'])}")
    if config.evaluation.baseline:
        cache.run(fine_tune.with_options(name="fine-tune-baseline"), "train-baseline", "baseline")
        track("train-baseline")
    trained = cache.run(fine_tune.with_options(name="fine-tune-adapted"), "train", "adapted")
    track("train")
    if trained.get("strategies"):
        print(f"training: {', '.join(trained['strategies'])}")
    cache.run(evaluate_target, "evaluate")
    track("evaluate")
    summary = stages.run_summary(config)
    if tracker is not None:
        summary["mlflow_run_id"] = tracker.run_id
        if config.tracking.register_model:
            summary["registered"] = stages.register_model(tracker, config, _prefect_context()["prefect.flow_run_id"])
            print(f"registered {summary['registered']['name']} version {summary['registered']['version']}: "
                  f"{summary['registered']['reason']}")
    create_markdown_artifact(run_markdown(summary), key="adaptflow-report",
                             description="Target-domain evaluation of this adaptflow run")
    return summary


def _log_failure(tracker: Any, config: AdaptflowConfig) -> None:
    """What a failed run still tells: its validation summary, if the validate stage wrote one."""
    try:
        if stages.layout_of(config).validation.is_file():
            tracker.log_validation(stages.layout_of(config))
    except Exception as error:  # the run is failing already; its status matters more than this log
        log.warning("could not log the validation summary of the failed run: %s", error)
