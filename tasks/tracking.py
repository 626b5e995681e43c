"""MLflow at the pipeline's edges: one run per flow run (or `dvc repro`), the model registry and its aliases.

The only module that uses MLflow for tracking. Every `log_*` method reads what a stage wrote under `output.dir`, so
the Prefect flow (after each task) and the DVC `register` stage (once, at the end) log the same things the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import math
import os
import re
import socket
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.config import AdaptflowConfig, TrackingConfig, flatten_config
from tasks.errors import TrackingError
from tasks.promotion import PromotionPolicy, Scores, decide_promotion
from tasks.provenance import dvc_md5, git_commit, package_versions

log = logging.getLogger(__name__)

DEFAULT_DB = "mlruns.db"
PARAM_LIMIT = 500  # characters kept of a long param value (MLflow allows 6,000; a list of paths is not worth more)
TAG_LIMIT = 5000
CHAMPION, CHALLENGER = "champion", "challenger"
SECRET_NAME = re.compile(r"(?i)(secret|token|passw(or)?d|api_?key|credential|auth)")
URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@/\s]+)@")


def resolve_uri(config: TrackingConfig) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else a SQLite store `mlruns.db` in the working directory."""
    return config.uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(DEFAULT_DB).resolve()}"


def local_artifact_root(uri: str) -> str | None:
    """For a SQLite store: `mlartifacts/` beside the database file (the server decides for http URIs)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
    return None


def redact(text: str) -> str:
    """`https://user:pw@host` -> `https://user:***@host`."""
    return URL_PASSWORD.sub(r"\1***@", text)


def ensure_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail before any work when the tracking store cannot be used, naming the URI and what to do."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
                if response.status != 200:
                    raise OSError(f"HTTP {response.status}")
        except (OSError, urllib.error.URLError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingError(f"MLflow tracking server {redact(uri)} is unreachable ({reason}); start it "
                                "(mlflow server --host 127.0.0.1 ...) or set tracking.uri / MLFLOW_TRACKING_URI, "
                                "or run with --set tracking.enabled=false") from None
    elif uri.startswith("sqlite:///"):
        parent = Path(uri.removeprefix("sqlite:///")).resolve().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError(f"MLflow store {uri}: cannot create {parent} ({exc.strerror}); set tracking.uri") \
                from None
        if not os.access(parent, os.W_OK):
            raise TrackingError(f"MLflow store {uri}: directory {parent} is not writable; set tracking.uri")


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
    tags.update({"adaptflow.host": socket.gethostname(), "adaptflow.pid": str(os.getpid())})
    return tags


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


LOCK_RETRIES = 8


def _is_locked(error: BaseException) -> bool:
    return "database is locked" in str(error)


def _timed(method: Any) -> Any:
    """Add the method's wall time to `self.seconds` (what tracking costs a run, measured where it is spent), and
    retry, with backoff, the calls a concurrent writer to a shared SQLite store made fail with "database is locked"."""
    @functools.wraps(method)
    def wrapper(self: RunTracker, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            for attempt in range(LOCK_RETRIES):
                try:
                    return method(self, *args, **kwargs)
                except Exception as error:
                    if not _is_locked(error) or attempt == LOCK_RETRIES - 1:
                        raise
                    log.warning("MLflow store busy (database is locked); retry %d of %d", attempt + 1,
                                LOCK_RETRIES - 1)
                    time.sleep(0.25 * 2 ** attempt)
            raise AssertionError("unreachable")
        finally:
            self.seconds += time.perf_counter() - started
    return wrapper


@contextlib.contextmanager
def store_lock(uri: str):
    """For a SQLite store: an exclusive file lock beside the database while its schema is created or migrated, so
    two runs starting at once do not race each other's migrations. A no-op for servers."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock_path = Path(uri.removeprefix("sqlite:///")).resolve().with_suffix(".lock")
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class RunTracker:
    """One MLflow run; every method is a no-op-free, explicit call with the run id (no global active run)."""

    client: Any
    run_id: str
    config: AdaptflowConfig
    uri: str
    logged_steps: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    # --- opening and closing -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, config: AdaptflowConfig, input_files: dict[str, str], context: dict[str, str | None],
             run_name: str | None = None) -> RunTracker:
        """Check the store, end runs left RUNNING by dead processes, start a run with params and provenance."""
        started = time.perf_counter()
        from mlflow import MlflowClient
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException

        uri = resolve_uri(config.tracking)
        ensure_reachable(uri)
        try:
            with store_lock(uri):  # the first access creates or migrates a SQLite schema: one process at a time
                client = MlflowClient(tracking_uri=uri, registry_uri=uri)
                client.search_registered_models(max_results=1)
                experiment = client.get_experiment_by_name(config.tracking.experiment)
                experiment_id = experiment.experiment_id if experiment else client.create_experiment(
                    config.tracking.experiment, artifact_location=local_artifact_root(uri))
            reconcile_stale_runs(client, experiment_id)
            tags = provenance_tags(input_files, context)
            run = client.create_run(experiment_id, run_name=run_name, tags=tags)
            params = [Param(key, value) for key, value in run_params(config).items()]
            for start in range(0, len(params), 100):
                client.log_batch(run.info.run_id, params=params[start:start + 100])
        except MlflowException as exc:
            raise TrackingError(f"MLflow store {redact(uri)}: {str(exc).splitlines()[0]}") from None
        log.info("MLflow run %s in experiment '%s' at %s", run.info.run_id, config.tracking.experiment, redact(uri))
        return cls(client, run.info.run_id, config, uri, seconds=time.perf_counter() - started)

    @_timed
    def close(self, status: str) -> None:
        """End the run as FINISHED, FAILED or KILLED."""
        self.client.set_terminated(self.run_id, status=status)

    # --- what each stage produced --------------------------------------------------------------------------------

    @_timed
    def log_validation(self, layout: Any) -> None:
        if not layout.validation.is_file():
            return
        summary = json.loads(layout.validation.read_text(encoding="utf-8"))
        metrics = {"validation.errors": summary["errors"], "validation.warnings": summary["warnings"]}
        metrics.update({f"rows.{role}": count for role, count in summary.get("counts", {}).items()})
        self._metrics(metrics)
        self.client.set_tag(self.run_id, "validation.status", summary["status"])
        self.client.log_artifact(self.run_id, str(layout.validation), "validation")
        if layout.data_docs.is_dir():
            self.client.log_artifacts(self.run_id, str(layout.data_docs), "validation/data_docs")
        self._log_inputs(layout)

    def _log_inputs(self, layout: Any) -> None:
        """`mlflow.data` datasets of the roles (with their digests) as the run's inputs."""
        import mlflow.data
        import pandas as pd
        from mlflow.entities import DatasetInput, InputTag

        fields = {"source_train": "source", "target_labeled": "target_labeled",
                  "target_unlabeled": "target_unlabeled", "target_test": "target_test"}
        files = self.config.data
        inputs = []
        for role, field_name in fields.items():
            path = layout.role(role)
            if not path.is_file():
                continue
            frame = pd.read_parquet(path)
            if frame.empty:
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

    @_timed
    def log_similarity(self, layout: Any) -> None:
        report = json.loads(layout.similarity.read_text(encoding="utf-8"))
        self._metrics({f"shift.{key}": value for key, value in report["measures"].items()
                       if isinstance(value, (int, float))})
        tags = {"branch": report["branch"], "decision": "similar" if report["similar"] else "dissimilar",
                "decision.forced": str(report.get("forced", False)).lower(),
                "decision.rationale": report["rationale"][:TAG_LIMIT]}
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)
        self.client.log_artifact(self.run_id, str(layout.similarity), "similarity")
        plot = layout.similarity.parent / "domains.png"
        if plot.is_file():
            self.client.log_artifact(self.run_id, str(plot), "similarity")

    @_timed
    def log_prepared(self, layout: Any) -> None:
        summary_path = layout.training_set.parent / "summary.json"
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        self.client.set_tag(self.run_id, "strategies", ", ".join(summary["strategies"])[:TAG_LIMIT])
        self._metrics({"rows.training_set": summary["rows"]})
        self.client.log_artifact(self.run_id, str(summary_path), "training_set")

    @_timed
    def log_training(self, layout: Any, which: str) -> None:
        """Per-epoch training loss and target-validation metrics as steps (epoch = step)."""
        from mlflow.entities import Metric

        history = json.loads(layout.history(which).read_text(encoding="utf-8"))
        stamp = _now_ms()
        metrics = [Metric(f"{which}.{key}", float(value), stamp, int(row["epoch"]))
                   for row in history["history"] for key, value in row.items()
                   if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value)]
        metrics.append(Metric(f"{which}.best_epoch", float(history["best_epoch"]), stamp, 0))
        if "selected" in history:  # self-training: how many unlabelled target texts got a pseudo-label
            metrics += [Metric(f"{which}.pseudo_label_candidates", float(history["candidates"]), stamp, 0),
                        Metric(f"{which}.pseudo_labeled", float(history["selected"]), stamp, 0)]
        self._batch(metrics)
        self.client.log_artifact(self.run_id, str(layout.history(which)), "training")
        if "selected" in history and layout.pseudo_labels.is_file():
            self.client.log_artifact(self.run_id, str(layout.pseudo_labels), "training")

    @_timed
    def log_evaluation(self, layout: Any, report_markdown: str | None = None) -> dict[str, Any]:
        report = json.loads((layout.reports / "metrics.json").read_text(encoding="utf-8"))
        metrics: dict[str, float] = {}
        for prefix, block in (("target", report["metrics"]), ("baseline", report.get("baseline_metrics"))):
            if not block:
                continue
            metrics.update({f"{prefix}.accuracy": block["accuracy"], f"{prefix}.macro_f1": block["macro_f1"]})
            if block.get("source"):
                metrics.update({f"{prefix}.source_accuracy": block["source"]["accuracy"],
                                f"{prefix}.source_macro_f1": block["source"]["macro_f1"]})
        metrics.update({f"gain.{key}": value for key, value in (report.get("gain") or {}).items()})
        self._metrics(metrics)
        for path in sorted(layout.reports.iterdir()):
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path), "reports")
        if report_markdown is not None:
            self.client.log_text(self.run_id, report_markdown, "report.md")
        return report

    # --- the model and the registry -------------------------------------------------------------------------------

    @_timed
    def log_model(self, model_dir: Path, example_texts: list[str]) -> str:
        """Save the model as an MLflow pyfunc (signature and input example) into the run; returns its runs:/ URI."""
        import mlflow.pyfunc
        import pandas as pd
        from mlflow.models import infer_signature

        from tasks import pyfunc_entry

        example = pd.DataFrame({"text": example_texts[:3] or ["an example text"]})
        signature = infer_signature(example, pd.DataFrame({"label": ["label"], "score": [0.5]}))
        settings = {"max_length": self.config.model.max_length, "batch_size": self.config.evaluation.batch_size,
                    "precision": self.config.train.precision}
        with tempfile.TemporaryDirectory(prefix="adaptflow-model-") as scratch:
            saved = Path(scratch) / "model"
            mlflow.pyfunc.save_model(str(saved), python_model=pyfunc_entry.__file__, artifacts={"model_dir": str(model_dir)},
                                     signature=signature, input_example=example, model_config=settings,
                                     pip_requirements=_requirements())
            self.client.log_artifacts(self.run_id, str(saved), "model")
        return f"runs:/{self.run_id}/model"

    @_timed
    def register(self, scores: Scores, flow_run_id: str | None) -> dict[str, Any]:
        """A new version of the registered model (alias challenger), tagged with where it came from; the gate
        decides whether `champion` moves. A retried flow run reuses its version instead of adding one."""
        from mlflow.exceptions import MlflowException

        name = self.config.tracking.registered_model
        client = self.client
        existing = self._version_of_flow_run(name, flow_run_id)
        if existing is not None:
            log.info("flow run %s already registered %s version %s; not registering again", flow_run_id, name,
                     existing.version)
            return {"name": name, "version": int(existing.version), "reused": True,
                    "promoted": existing.tags.get("promotion.promoted") == "true",
                    "reason": existing.tags.get("promotion.reason", "")}
        champion = self._champion_scores(name)
        promote, reason = decide_promotion(scores, champion, PromotionPolicy(self.config.tracking.promotion_margin,
                                                                             self.config.tracking.max_source_drop))
        try:
            client.get_registered_model(name)
        except MlflowException:
            try:
                client.create_registered_model(name, description="Fine-tuned by adaptflow for a target domain.")
            except MlflowException as error:  # a run beside this one created it since the lookup: use it
                if error.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
        run = client.get_run(self.run_id)
        tags = {key: value for key, value in run.data.tags.items()
                if key.startswith(("data.md5.", "git.", "prefect.")) or key in ("branch",)}
        tags.update({"target_macro_f1": f"{scores.target_macro_f1:.6f}", "promotion.promoted": str(promote).lower(),
                     "promotion.reason": reason[:TAG_LIMIT]})
        if scores.source_macro_f1 is not None:
            tags["source_macro_f1"] = f"{scores.source_macro_f1:.6f}"
        version = client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=self.run_id,
                                              tags=tags)
        try:
            client.set_registered_model_alias(name, CHALLENGER, version.version)
            if promote:
                client.set_registered_model_alias(name, CHAMPION, version.version)
        except Exception:
            client.delete_model_version(name, version.version)  # never leave a version the gate did not finish
            raise
        client.set_tag(self.run_id, "registered_model_version", f"{name}/{version.version}")
        client.set_tag(self.run_id, "promotion.reason", reason[:TAG_LIMIT])
        log.info("registered %s version %s (%s): %s", name, version.version,
                 "champion" if promote else "challenger", reason)
        return {"name": name, "version": int(version.version), "reused": False, "promoted": promote,
                "reason": reason}

    def _version_of_flow_run(self, name: str, flow_run_id: str | None) -> Any:
        if not flow_run_id:
            return None
        from mlflow.exceptions import MlflowException

        try:
            versions = self.client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            return None
        return next((v for v in versions if v.tags.get("prefect.flow_run_id") == flow_run_id), None)

    def _champion_scores(self, name: str) -> Scores | None:
        from mlflow.exceptions import MlflowException

        try:
            champion = self.client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            return None
        source = champion.tags.get("source_macro_f1")
        return Scores(float(champion.tags["target_macro_f1"]), float(source) if source is not None else None)

    # --- helpers ---------------------------------------------------------------------------------------------------

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


def load_registered(uri: str, tracking_uri: str | None = None) -> Any:
    """`mlflow.pyfunc.load_model` for a models:/ or runs:/ URI, with a one-line error when it cannot."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from tasks.errors import ModelError

    resolved = tracking_uri or resolve_uri(TrackingConfig())
    ensure_reachable(resolved)
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise ModelError(f"{uri}: {str(exc).splitlines()[0]} (registry {redact(resolved)})") from None


def _requirements() -> list[str]:
    versions = package_versions(("torch", "transformers", "pandas", "safetensors", "mlflow", "scikit-learn"))
    return [f"{name}=={version.split('+')[0]}" for name, version in versions.items()]


def _now_ms() -> int:
    return int(time.time() * 1000)
