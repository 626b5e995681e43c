"""The Prefect flow: the seed's graph, with the branch taken by name.

validate-data -> check-similarity -> joint-training | shift-adaptation -> fine-tune-baseline / fine-tune-adapted
(-> pseudo-label -> fine-tune-round-2 when the branch self-trains) -> evaluate-target -> register-model.

Each task runs a stage function of `flows.stages` (the code `dvc repro` runs) and receives its upstream tasks'
futures, so Prefect records the edges and the UI draws them. The flow branches in its body on the similarity
check's decision. One MLflow run per flow run, opened before any work (an unreachable server fails the flow at
once) and ended FINISHED, FAILED or KILLED to match how the flow ended.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.layout import input_files, layout_of
from flows.prefect_tasks import TaskCalls
from flows.stage_registry import BY_NAME
from flows.stages import evaluate, prepare, register, similarity, train, validate
from tasks.branching import plan_strategies
from tasks.config import AdaptflowConfig
from tasks.report import run_markdown, summarise_run
from tasks.results import ValidationSummary
from tasks.validation import failure_line, summary_markdown

log = logging.getLogger(__name__)
# One task at a time by default: two fine-tunes in threads of one process would share torch's global random
# generator (dropout) and lose reproducibility. Independent tasks are submitted, so a task runner that runs them
# in processes of their own (Dask) runs them at once.
TASK_RUNNER = ThreadPoolTaskRunner(max_workers=1)


def _prefect_context() -> dict[str, str | None]:
    from prefect.runtime import deployment, flow_run

    return {"adaptflow.trigger": "prefect", "prefect.flow_run_id": flow_run.id,
            "prefect.flow_run_name": flow_run.name, "prefect.flow_run_url": flow_run.ui_url,
            "prefect.deployment_id": deployment.id}


@flow(name="adaptflow", log_prints=True, timeout_seconds=12 * 3600, persist_result=True, task_runner=TASK_RUNNER)
def adaptation_flow(config: AdaptflowConfig = AdaptflowConfig()) -> dict[str, Any]:
    """Adapt the foundation model in `config.model` to the target domain in `config.data`."""
    tracker = None
    if config.tracking.enabled:
        from flows.tracking import RunTracker

        context = _prefect_context()
        tracker = RunTracker.open(config, input_files(config), context, run_name=context["prefect.flow_run_name"])
    try:
        summary = _pipeline(config, TaskCalls(config, tracker))
    except BaseException as error:
        if tracker is not None:
            _log_failure(tracker, config)
            tracker.close(register.run_status(error))
        raise
    if tracker is not None:
        tracker.close("FINISHED")
        summary["tracking_seconds"] = round(tracker.seconds, 3)
    return summary


def _pipeline(config: AdaptflowConfig, calls: TaskCalls) -> dict[str, Any]:
    checked = calls.submit(validate.validate)
    try:
        validation = calls.result(checked, track=True)
    finally:
        _publish_validation(config)
    print(f"data validation: {validation.status} ({validation.errors} errors, {validation.warnings} warnings, "
          f"{validation.seconds} s)")
    for failure in validation.failures:
        print(failure_line(failure))
    decided = calls.submit(similarity.similarity, checked)
    decision = calls.result(decided, track=True)
    print(f"branch: {decision.branch} - {decision.rationale}")
    plan = plan_strategies(decision.branch, config.strategy, validation.counts.get("target_unlabeled", 0))

    baseline = calls.submit(train.fine_tune_baseline, checked) if BY_NAME["train-baseline"].enabled(config) else None
    prepared = calls.submit(prepare.BUILDERS[decision.branch], checked, decided)
    adapted = calls.submit(train.fine_tune_adapted, checked, prepared)
    teacher = []  # self-training's first round and pseudo-labels: awaited too, so that their caches are stamped
    if plan.self_training:
        pseudo = calls.submit(train.pseudo_label, checked, adapted)
        teacher = [adapted, pseudo]
        adapted = calls.submit(train.fine_tune_round_2, checked, adapted, pseudo)
    evaluated = calls.submit(evaluate.evaluate, checked, adapted, baseline)

    training_set = calls.result(prepared, track=True)
    print(f"training set: {training_set.rows} rows; strategies: {', '.join(training_set.strategies)}")
    if baseline is not None:
        calls.result(baseline, track=True)
    for step in teacher:
        calls.result(step)
    model = calls.result(adapted, track=True)
    if model.strategies:
        print(f"training: {', '.join(model.strategies)}")
    report = calls.result(evaluated, track=True)
    summary = summarise_run(validation, decision, training_set, model, report)
    if calls.tracker is not None:
        summary["mlflow_run_id"] = calls.tracker.run_id
        summary["mlflow_run_url"] = calls.tracker.page_url()
        registered = calls.result(calls.submit(register.register_model, calls.tracker, evaluated, adapted,
                                               _prefect_context()["prefect.flow_run_id"], calls.all_cached()))
        if registered.skipped is None:
            summary["registered"] = registered.to_dict()
            print(f"registered {registered.name} version {registered.version}: {registered.reason}")
    create_markdown_artifact(run_markdown(summary), key="adaptflow-report",
                             description="Target-domain evaluation of this adaptflow run")
    return summary


def _publish_validation(config: AdaptflowConfig) -> None:
    path = layout_of(config).validation
    if path.is_file():
        import json

        summary = ValidationSummary.from_dict(json.loads(path.read_text(encoding="utf-8")))
        create_markdown_artifact(summary_markdown(summary.to_dict()), key="adaptflow-validation",
                                 description="Data validation summary (Great Expectations)")


def _log_failure(tracker: Any, config: AdaptflowConfig) -> None:
    """What a failed run still tells: its validation summary, if the validate stage wrote one."""
    import json

    path = layout_of(config).validation
    try:
        if path.is_file():
            tracker.log_validation(layout_of(config), ValidationSummary.from_dict(json.loads(path.read_text())))
    except Exception as error:  # the run is failing already; its status matters more than this log
        log.warning("could not log the validation summary of the failed run: %s", error)
