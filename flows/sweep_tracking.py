"""A sweep in MLflow: a parent run with the results table, the plot and the pick; a child run per candidate (its
params, validation and test scores, branch and strategies); the winner registered through the promotion gate."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from flows.layout import input_files, layout_of
from tasks.config import AdaptflowConfig
from tasks.sweep_grid import Candidate


def track_sweep(config: AdaptflowConfig, candidates: dict[str, Candidate], summary: dict[str, Any]) -> dict[str, Any]:
    """Log the sweep; returns the parent run id and the winner's registration."""
    from flows.stage_registry import BY_NAME
    from flows.stages.register import register_model
    from flows.tracking import RunTracker

    parent = RunTracker.open(config, input_files(config), {"adaptflow.trigger": "sweep"}, run_name="sweep")
    registration = None
    try:
        for result in summary["candidates"]:
            candidate = candidates[result["id"]]
            child = RunTracker.open(candidate.config, input_files(candidate.config),
                                    {"adaptflow.trigger": "sweep", "mlflow.parentRunId": parent.run_id,
                                     "sweep.candidate": candidate.id}, run_name=candidate.id)
            child.client.log_batch(child.run_id, metrics=_metrics(result))
            for key, value in {"branch": result.get("branch"), "strategies": ",".join(result.get("strategies", [])),
                               "sweep.error": result.get("error")}.items():
                if value:
                    child.client.set_tag(child.run_id, key, value)
            if result["id"] == summary["winner"]:
                layout = layout_of(candidate.config)
                report, adapted = BY_NAME["evaluate"].load(layout), BY_NAME["train"].load(layout)
                registration = register_model(candidate.config, child, report, adapted)
            child.close("FAILED" if result.get("error") else "FINISHED")
        _log_summary(parent, config, summary)
    except BaseException:
        parent.close("FAILED")
        raise
    parent.close("FINISHED")
    return {"mlflow_run_id": parent.run_id,
            "registered": registration.to_dict() if registration is not None else None}


def _metrics(result: dict[str, Any]) -> list[Any]:
    import time

    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    values = {"selection.macro_f1": result.get("selection_macro_f1"), "target.macro_f1": result.get("test_macro_f1"),
              "target.accuracy": result.get("test_accuracy"), "seconds": result.get("seconds")}
    return [Metric(key, float(value), stamp, 0) for key, value in values.items() if value is not None]


def _log_summary(parent: Any, config: AdaptflowConfig, summary: dict[str, Any]) -> None:
    from tasks.sweep_report import table_rows

    client = parent.client
    client.set_tag(parent.run_id, "sweep.winner", summary["winner"])
    client.set_tag(parent.run_id, "sweep.why", summary["why"])
    client.log_table(parent.run_id, data={key: [row[key] for row in table_rows(summary)]
                                          for key in table_rows(summary)[0]}, artifact_file="sweep/results.json")
    plot = Path(config.output.dir) / "sweep" / "scores.png"
    if plot.is_file():
        client.log_artifact(parent.run_id, str(plot), "sweep")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "summary.json"
        path.write_text(json.dumps(summary, indent=2, default=str))
        client.log_artifact(parent.run_id, str(path), "sweep")
