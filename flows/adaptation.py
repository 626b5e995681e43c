"""The Prefect flow: validate -> similarity -> (joint training | shift adaptation) -> fine-tune -> evaluate.

Each Prefect task is a thin wrapper around a stage in `flows.stages`, the same code `dvc repro` runs.
"""

from __future__ import annotations

import json
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows import stages
from tasks.report import run_markdown
from tasks.config import AdaptflowConfig
from tasks.errors import ValidationFailed
from tasks.validation import failure_line, summary_markdown


@task(name="validate-data", cache_policy=NO_CACHE)
def validate_data(config: AdaptflowConfig) -> dict[str, Any]:
    try:
        summary = stages.validate(config)
    except ValidationFailed:
        _publish_validation(config)
        raise
    _publish_validation(config)
    return summary


def _publish_validation(config: AdaptflowConfig) -> None:
    path = stages.layout_of(config).validation
    if path.is_file():
        summary = json.loads(path.read_text(encoding="utf-8"))
        create_markdown_artifact(summary_markdown(summary), key="adaptflow-validation",
                                 description="Data validation summary (Great Expectations)")


@task(name="check-similarity", cache_policy=NO_CACHE)
def check_similarity(config: AdaptflowConfig) -> dict[str, Any]:
    return stages.similarity(config).as_dict()


@task(name="prepare-training-set", cache_policy=NO_CACHE)
def prepare_training_set(config: AdaptflowConfig) -> dict[str, Any]:
    return stages.prepare(config)


@task(name="fine-tune", cache_policy=NO_CACHE)
def fine_tune(config: AdaptflowConfig, which: str) -> dict[str, Any]:
    return stages.train(config, which)


@task(name="evaluate-target", cache_policy=NO_CACHE)
def evaluate_target(config: AdaptflowConfig) -> dict[str, Any]:
    return stages.evaluate(config)


@flow(name="adaptflow", log_prints=True)
def adaptation_flow(config: AdaptflowConfig = AdaptflowConfig()) -> dict[str, Any]:
    """Adapt the foundation model in `config.model` to the target domain in `config.data`."""
    validation = validate_data(config)
    print(f"data validation: {validation['status']} ({validation['errors']} errors, {validation['warnings']} "
          f"warnings, {validation['seconds']} s)")
    for failure in validation["failures"]:
        print(failure_line(failure))
    decision = check_similarity(config)
    print(f"branch: {decision['branch']} - {decision['rationale']}")
    prepared = prepare_training_set(config)
    print(f"training set: {prepared['rows']} rows; strategies: {', '.join(prepared['strategies'])}")
    if config.evaluation.baseline:
        fine_tune.with_options(name="fine-tune-baseline")(config, "baseline")
    fine_tune.with_options(name="fine-tune-adapted")(config, "adapted")
    report = evaluate_target(config)
    summary = {"branch": decision["branch"], "decision": decision, "strategies": prepared["strategies"],
               "rows": validation["counts"],
               "validation": validation["status"], **report}
    create_markdown_artifact(run_markdown(summary), key="adaptflow-report",
                             description="Target-domain evaluation of this adaptflow run")
    return summary
