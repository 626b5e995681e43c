"""Log the run to MLflow and register the adapted model through the champion/challenger gate."""

from __future__ import annotations

from typing import Any

from flows.layout import PREDICTION_SPLITS, input_files, layout_of, read_labels, read_predictions, read_role
from tasks.atomic import write_json
from tasks.branching import Decision
from tasks.config import AdaptflowConfig
from tasks.promotion import Scores
from tasks.results import EvaluationReport, PreparedSet, Registration, TrainSummary, ValidationSummary


def register_model(config: AdaptflowConfig, tracker: Any, report: EvaluationReport, adapted: TrainSummary,
                   flow_run_id: str | None = None, cached: bool = False) -> Registration:
    """Log the adapted model into the run and register it as a new version; the gate, scoring the champion on the
    texts the evaluate stage scored, decides the aliases. `cached`: every stage of the run was cached."""
    from flows.registry import Evidence, register_version

    layout = layout_of(config)
    if not config.tracking.register_model:
        registration = Registration(skipped="tracking.register_model is false")
    else:
        scores = Scores(report.metrics["macro_f1"], (report.metrics.get("source") or {}).get("macro_f1"))
        labels = read_labels(layout)
        predicted = read_predictions(layout, labels)
        evidence = Evidence(labels, *(read_role(layout, role)[["text", "label"]].assign(predicted=predicted[role])
                                      for role in PREDICTION_SPLITS))
        registration = register_version(tracker, layout.model(adapted.role), scores, evidence, flow_run_id, cached,
                                        backend=report.backend)
    write_json(layout.registration, registration.to_dict())
    return registration


def register(config: AdaptflowConfig, validation: ValidationSummary, decision: Decision, prepared: PreparedSet,
             baseline: TrainSummary | None, adapted: TrainSummary, report: EvaluationReport) -> Registration:
    """What `dvc repro` runs last: one MLflow run with every earlier stage's results, then the registry."""
    from flows.stage_registry import BY_RUN, track_results
    from flows.tracking import RunTracker

    layout = layout_of(config)
    if not config.tracking.enabled:
        registration = Registration(skipped="tracking.enabled is false")
        write_json(layout.registration, registration.to_dict())
        return registration
    tracker = RunTracker.open(config, input_files(config), {"adaptflow.trigger": "dvc repro"}, run_name="dvc-repro")
    try:
        upstream = dict(zip(BY_RUN[register].upstream,
                            [validation, decision, prepared, baseline, adapted, report], strict=True))
        track_results(tracker, config, upstream)
        registration = register_model(config, tracker, report, adapted)
    except BaseException as error:
        tracker.close(run_status(error))
        raise
    tracker.close("FINISHED")
    return registration


def run_status(error: BaseException) -> str:
    """The MLflow status for a run that ended with `error`: KILLED when interrupted or cancelled, else FAILED."""
    from prefect.exceptions import TerminationSignal

    return "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit, TerminationSignal)) else "FAILED"
