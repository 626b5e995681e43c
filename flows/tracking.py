"""MLflow runs at the pipeline's edge: one run per flow run (or `dvc repro`), with params, provenance and what each
stage produced.

Every `log_*` method takes the stage's typed result (and the layout, for the files it logs as artifacts), so the
Prefect flow (after each task) and the DVC `register` stage (once, at the end) log the same things the same way.
The model registry is `registry.py`; the store's URI, lock and retries are `mlflow_store.py`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.mlflow_store import (TAG_LIMIT, ensure_reachable, open_experiment, redact, resolve_uri, run_page_url,
                                timed)
from tasks.branching import Decision
from tasks.config import AdaptflowConfig, flatten_config
from tasks.errors import TrackingError
from tasks.provenance import dvc_md5, git_commit, package_versions
from tasks.results import EvaluationReport, PreparedSet, TrainSummary, ValidationSummary

log = logging.getLogger(__name__)

PARAM_LIMIT = 500  # characters kept of a long param value (MLflow allows 6,000; a list of paths is not worth more)
SECRET_NAME = re.compile(r"(?i)(secret|token|passw(or)?d|api_?key|credential|auth)")
INPUT_ROLES = {"source_train": "source", "target_labeled": "target_labeled", "target_unlabeled": "target_unlabeled",
               "target_test": "target_test"}  # data role -> the `data` field its rows were read from


def run_params(config: AdaptflowConfig) -> dict[str, str]:
    """The whole config as flat params; long values truncated, passwords in URLs masked."""
    params = {}
    for key, value in flatten_config(config).items():
        text = redact(json.dumps(value) if isinstance(value, (list, dict)) else str(value))
        if SECRET_NAME.search(key):
            text = "***"
        params[key] = text if len(text) <= PARAM_LIMIT else text[: PARAM_LIMIT - 1] + "…"
    return params


def provenance_tags(input_files: dict[str, str], context: dict[str, str | None]) -> dict[str, str]:
    """Tags that trace a run to its data (DVC md5 of each input), code (git commit) and orchestrator run."""
    tags: dict[str, str] = {key: str(value) for key, value in context.items()
                            if value is not None and not str(value).startswith("None/")}
    commit, dirty = git_commit(Path(__file__).resolve().parents[1])
    if commit:
        tags.update({"git.commit": commit, "git.dirty": str(dirty).lower(), "mlflow.source.git.commit": commit})
    for role, path in input_files.items():
        tags[f"data.path.{role}"] = path
        tags[f"data.md5.{role}"] = dvc_md5(Path(path))
    tags.update({f"versions.{name}": version for name, version in package_versions().items()})
    tags.update({"adaptflow.host": socket.gethostname(), "adaptflow.pid": str(os.getpid()),
                 "mlflow.source.name": f"adaptflow ({tags.get('adaptflow.trigger', 'run')})",
                 "mlflow.source.type": "JOB"})
    return tags


@dataclass
class RunTracker:
    """One MLflow run; every method is an explicit call with the run id (no global active run)."""

    client: Any
    run_id: str
    config: AdaptflowConfig
    uri: str
    logged_steps: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def open(cls, config: AdaptflowConfig, input_files: dict[str, str], context: dict[str, str | None],
             run_name: str | None = None) -> RunTracker:
        """Check the store, end runs left RUNNING by dead processes, start a run with params and provenance."""
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException

        started = time.perf_counter()
        uri = resolve_uri(config.tracking)
        ensure_reachable(uri)
        try:
            client, experiment_id = open_experiment(uri, config.tracking.experiment)
            reconcile_stale_runs(client, experiment_id)
            run = client.create_run(experiment_id, run_name=run_name, tags=provenance_tags(input_files, context))
            params = [Param(key, value) for key, value in run_params(config).items()]
            for start in range(0, len(params), 100):
                client.log_batch(run.info.run_id, params=params[start:start + 100])
        except MlflowException as exc:
            raise TrackingError(f"MLflow store {redact(uri)}: {str(exc).splitlines()[0]}") from None
        log.info("MLflow run %s in experiment '%s' at %s", run.info.run_id, config.tracking.experiment, redact(uri))
        return cls(client, run.info.run_id, config, uri, seconds=time.perf_counter() - started)

    def page_url(self) -> str | None:
        """The run's page in the MLflow UI (model-training view), when the store is a tracking server."""
        return run_page_url(self.uri, self.client.get_run(self.run_id).info.experiment_id, self.run_id)

    @timed
    def close(self, status: str) -> None:
        """End the run as FINISHED, FAILED or KILLED."""
        self.client.set_terminated(self.run_id, status=status)

    @timed
    def log_validation(self, layout: Any, summary: ValidationSummary) -> None:
        """Check counts and rows per role as metrics, the status as a tag, the summary and Data Docs, the inputs."""
        metrics = {"validation.errors": summary.errors, "validation.warnings": summary.warnings}
        metrics.update({f"rows.{role}": count for role, count in summary.counts.items()})
        self._metrics(metrics)
        self.client.set_tag(self.run_id, "validation.status", summary.status)
        if layout.validation.is_file():
            self.client.log_artifact(self.run_id, str(layout.validation), "validation")
        if layout.data_docs.is_dir():
            self.client.log_artifacts(self.run_id, str(layout.data_docs), "validation/data_docs")
        self._log_inputs(layout)

    @timed
    def log_similarity(self, layout: Any, decision: Decision) -> None:
        """The shift measures as `shift.*` metrics, the branch and its rationale as tags, the report and plot."""
        self._metrics({f"shift.{key}": value for key, value in decision.measures.items()
                       if isinstance(value, (int, float))})
        tags = {"branch": decision.branch, "decision": {True: "similar", False: "dissimilar", None: "not measured"}[decision.similar],
                "decision.forced": str(decision.forced).lower(), "decision.rationale": decision.rationale[:TAG_LIMIT]}
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)
        self.client.log_artifact(self.run_id, str(layout.similarity), "similarity")
        if layout.domains_plot.is_file():
            self.client.log_artifact(self.run_id, str(layout.domains_plot), "similarity")

    @timed
    def log_prepared(self, layout: Any, prepared: PreparedSet) -> None:
        """The strategies applied as a tag, the training set's rows as a metric, its summary as an artifact."""
        self.client.set_tag(self.run_id, "strategies", ", ".join(prepared.strategies)[:TAG_LIMIT])
        self._metrics({"rows.training_set": prepared.rows})
        self.client.log_artifact(self.run_id, str(layout.prepared), "training_set")

    @timed
    def log_training(self, layout: Any, trained: TrainSummary) -> None:
        """Per-epoch training loss and target-validation metrics as `{role}.*` (step = epoch), and each optimizer
        step's loss and learning rate as `{role}.step.train_loss` / `{role}.step.learning_rate` (step = global
        step)."""
        from mlflow.entities import Metric

        role, stamp = trained.role, _now_ms()
        metrics = [Metric(f"{role}.{key}", float(value), stamp, int(row["epoch"]))
                   for row in trained.history for key, value in row.items()
                   if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value)]
        metrics += [Metric(f"{role}.step.{key}", float(step[value]), stamp, int(step["step"]))
                    for row in trained.history for step in row.get("steps", [])
                    for key, value in (("train_loss", "train_loss"), ("learning_rate", "lr"))]
        metrics.append(Metric(f"{role}.best_epoch", float(trained.best_epoch), stamp, 0))
        pseudo = trained.pseudo_labels  # self-training: how many unlabelled target texts got a pseudo-label
        if pseudo is not None:
            metrics += [Metric(f"{role}.pseudo_label_candidates", float(pseudo.candidates), stamp, 0),
                        Metric(f"{role}.pseudo_labeled", float(pseudo.selected), stamp, 0)]
        self._batch(metrics)
        self.client.log_artifact(self.run_id, str(layout.history(role)), "training")
        if pseudo is not None and layout.pseudo_labels.is_file():
            self.client.log_artifact(self.run_id, str(layout.pseudo_labels), "training")

    @timed
    def log_evaluation(self, layout: Any, report: EvaluationReport, report_markdown: str | None = None) -> None:
        """Target (and source) accuracy and macro-F1 of the adapted model and the baseline, the gain, the reports."""
        metrics: dict[str, float] = {}
        for prefix, block in (("target", report.metrics), ("baseline", report.baseline_metrics)):
            if not block:
                continue
            metrics.update({f"{prefix}.accuracy": block["accuracy"], f"{prefix}.macro_f1": block["macro_f1"]})
            if block.get("source"):
                metrics.update({f"{prefix}.source_accuracy": block["source"]["accuracy"],
                                f"{prefix}.source_macro_f1": block["source"]["macro_f1"]})
        metrics.update({f"gain.{key}": value for key, value in (report.gain or {}).items()})
        self._metrics(metrics)
        for path in sorted(layout.reports.iterdir()):
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path), "reports")
        if report_markdown is not None:
            self.client.log_text(self.run_id, report_markdown, "report.md")
            self.client.set_tag(self.run_id, "mlflow.note.content", report_markdown)  # the run page's Description

    def _log_inputs(self, layout: Any) -> None:
        """`mlflow.data` datasets of the roles (with their digests) as the run's inputs."""
        import mlflow.data
        import pandas as pd
        from mlflow.entities import DatasetInput, InputTag

        files = self.config.data
        inputs = []
        for role, field_name in INPUT_ROLES.items():
            path = layout.role(role)
            frame = pd.read_parquet(path) if path.is_file() else None
            if frame is None or frame.empty:
                continue
            origin = getattr(files, field_name) or files.target or path  # the file this role was read from
            with warnings.catch_warnings():  # "source can be interpreted in multiple ways": both are local files
                warnings.simplefilter("ignore", UserWarning)
                dataset = mlflow.data.from_pandas(frame, source=str(origin), name=role,
                                                  targets="label" if "label" in frame.columns else None)
            context = "testing" if role == "target_test" else "training"
            inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)]))
        if inputs:
            self.client.log_inputs(self.run_id, datasets=inputs)

    def _metrics(self, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        stamp = _now_ms()
        self._batch([Metric(key, float(value), stamp, 0) for key, value in values.items()
                     if value is not None and float(value) == float(value)])

    def _batch(self, metrics: list[Any]) -> None:
        for start in range(0, len(metrics), 1000):
            chunk = metrics[start:start + 1000]
            self.client.log_batch(self.run_id, metrics=chunk)
            for metric in chunk:
                self.logged_steps[metric.key] = self.logged_steps.get(metric.key, 0) + 1


def reconcile_stale_runs(client: Any, experiment_id: str) -> list[str]:
    """End as KILLED the runs this host left RUNNING from processes that no longer exist (kill -9, power loss)."""
    host = socket.gethostname()
    stale = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=200):
        tags = run.data.tags
        pid = tags.get("adaptflow.pid", "")
        if tags.get("adaptflow.host") == host and pid.isdigit() and not _pid_alive(int(pid)):
            client.set_tag(run.info.run_id, "adaptflow.reconciled", "process gone; ended as KILLED by a later run")
            client.set_terminated(run.info.run_id, status="KILLED")
            stale.append(run.info.run_id)
    if stale:
        log.warning("ended %d MLflow run(s) left RUNNING by killed processes: %s", len(stale), ", ".join(stale))
    return stale


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now_ms() -> int:
    return int(time.time() * 1000)
