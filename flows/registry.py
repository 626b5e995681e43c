"""The MLflow model registry at the pipeline's edge: the adapted model as a pyfunc in its run, a new version of the
registered model, and the champion/challenger aliases moved only as `tasks.promotion.decide_promotion` says."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.mlflow_store import TAG_LIMIT, ensure_reachable, redact, resolve_uri, timed
from tasks.config import TrackingConfig
from tasks.promotion import Evidence, PromotionPolicy, Scores, decide_promotion
from tasks.provenance import dvc_md5, package_versions
from tasks.results import Registration

if TYPE_CHECKING:
    from flows.tracking import RunTracker

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
SERVED_PACKAGES = ("mlflow", "torch", "transformers", "pandas", "onnxruntime")  # all the served model imports
RUN_TAGS_KEPT = ("data.md5.", "git.", "prefect.")  # run tags copied onto the version, with `branch`


def register_version(tracker: RunTracker, model_dir: Path, scores: Scores, evidence: Evidence,
                     flow_run_id: str | None = None, cached: bool = False, *, backend: str) -> Registration:
    """Log the model into the tracker's run (as an MLflow 3 logged model with its scores), then register it
    through the champion/challenger gate. `backend`: what labelled the evaluation's test texts (`inference.backend`
    as the evaluate stage resolved it, `EvaluationReport.backend`); the logged model carries that graph. A run whose
    every stage was cached re-validates the version already registered for the same model files instead of adding
    one."""
    model_md5 = dvc_md5(model_dir)
    if cached:
        revalidated = _revalidate(tracker, model_md5, flow_run_id)
        if revalidated is not None:
            return revalidated
    model_id = log_model(tracker, model_dir, evidence.target["text"].head(3).tolist(), backend, scores)
    return register(tracker, scores, evidence, flow_run_id, model_id, model_md5)


@timed
def log_model(tracker: RunTracker, model_dir: Path, example_texts: list[str], backend: str,
              scores: Scores | None = None) -> str:
    """Save the model as an MLflow pyfunc (signature, input example, `tasks/serving.py` as its code, the HF weights
    and, where the evaluation labelled its texts in ONNX (`backend`, resolved: `onnx` or `onnx-int8`), their int8
    ONNX export beside them, with the fp32 one that labels int8's close calls again where `inference.int8_recheck`
    is above 0) and log it as the run's logged model `model` (listed under the run page's Logged
    models, with its target scores; `runs:/ID/model` resolves to it); returns its model id. Where the evaluation ran
    in `torch` (`auto` on a GPU or a CPU with native bf16) no export is made: the served model runs in torch as the
    evaluation did; set `inference.backend: onnx-int8` to ship the int8 graph for serving on CPUs without native
    bf16. The backend is the evaluation's, not resolved again here: the registering process may run on another
    machine than the evaluate task (a Prefect worker, a Dask cluster)."""
    import functools
    import importlib.util

    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature

    from tasks.onnx_inference import INT8_BATCH, exported, fp32_beside

    config = tracker.config
    example = pd.DataFrame({"text": example_texts[:3] or ["an example text"]})
    signature = infer_signature(example, pd.DataFrame({"label": ["label"], "score": [0.5]}))
    settings = {"max_length": config.model.max_length, "batch_size": config.evaluation.batch_size,
                "backend": config.inference.backend, "precision": config.train.precision,
                "int8_batch_size": INT8_BATCH,  # texts per ONNX Runtime call, as the evaluation's int8 labelling
                "int8_recheck": config.inference.int8_recheck}  # its close calls labelled by the fp32 graph
    artifacts = {"model_dir": str(model_dir)}
    if backend != "torch":
        artifacts["onnx_int8"] = str(exported(model_dir, config.inference.cache_dir, True))
        if config.inference.int8_recheck > 0:  # the fp32 graph that labels int8's close calls again
            artifacts["onnx_fp32"] = str(fp32_beside(Path(artifacts["onnx_int8"])))
    save = functools.partial(mlflow.pyfunc.save_model, python_model=importlib.util.find_spec("tasks.serving").origin,
                             artifacts=artifacts, signature=signature, input_example=example, model_config=settings,
                             pip_requirements=_requirements(),
                             code_paths=[importlib.util.find_spec(f"tasks.{name}").origin
                                         for name in ("mean_pooling", "cpu_features", "attention_kernels")])
    return _logged_model(tracker, save, scores)


def _logged_model(tracker: RunTracker, save: Callable[[str], object], scores: Scores | None) -> str:
    """The pyfunc that `save(path)` writes, as an MLflow 3 logged model: created for the run, its files, its scores,
    READY. In an artifact store on this machine's file system the files are saved beside their place in the store
    and renamed into it (one write of the weights, and never a half-written model in the store); in a remote store
    they are saved to a temporary directory and uploaded."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric

    client = tracker.client
    run = client.get_run(tracker.run_id)
    model = client.create_logged_model(run.info.experiment_id, name="model", source_run_id=tracker.run_id,
                                       model_type="text-classifier")
    place = local_directory(model.artifact_location)
    if place is not None and not (place.is_dir() and any(place.iterdir())):
        place.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".adaptflow-model-", dir=place.parent) as scratch:
            save(str(Path(scratch) / "model"))
            if place.is_dir():
                place.rmdir()
            os.replace(Path(scratch) / "model", place)
    else:
        with tempfile.TemporaryDirectory(prefix="adaptflow-model-") as scratch:
            save(str(Path(scratch) / "model"))
            client.log_model_artifacts(model.model_id, str(Path(scratch) / "model"))
    if scores is not None:
        values = {"target.macro_f1": scores.target_macro_f1, "source.macro_f1": scores.source_macro_f1}
        client.log_batch(tracker.run_id, metrics=[
            Metric(key, float(value), int(time.time() * 1000), 0, model_id=model.model_id)
            for key, value in values.items() if value is not None])
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(tracker.run_id, [LoggedModelOutput(model.model_id, step=0)])
    return model.model_id


def local_directory(location: str) -> Path | None:
    """The directory of an artifact location (`/path` or `file:///path`) on this machine, or None for a remote
    store (`s3://`, `mlflow-artifacts:`, ...)."""
    from urllib.parse import urlparse

    from mlflow.utils.file_utils import local_file_uri_to_path

    scheme = urlparse(location).scheme
    if scheme == "file":
        return Path(local_file_uri_to_path(location))
    return Path(location) if scheme == "" else None


@timed
def register(tracker: RunTracker, scores: Scores, evidence: Evidence, flow_run_id: str | None,
             model_id: str | None = None, model_md5: str | None = None) -> Registration:
    """A new version of the registered model (alias challenger), tagged with where it came from; the gate
    decides whether `champion` moves. A retried flow run reuses its version instead of adding one."""
    client, settings = tracker.client, tracker.config.tracking
    name = settings.registered_model
    existing = _version_of_flow_run(client, name, flow_run_id)
    if existing is not None:
        log.info("flow run %s already registered %s version %s; not registering again", flow_run_id, name,
                 existing.version)
        return Registration(name, int(existing.version), existing.tags.get("promotion.promoted") == "true",
                            existing.tags.get("promotion.reason", ""), reused=True)
    promote, reason = _gate(tracker, evidence)
    _ensure_registered_model(client, name)
    run = client.get_run(tracker.run_id)
    source = client.get_logged_model(model_id).artifact_location if model_id else f"{run.info.artifact_uri}/model"
    version = client.create_model_version(name, source=source, run_id=tracker.run_id,
                                          tags=_version_tags(run.data.tags, scores, promote, reason, model_md5),
                                          model_id=model_id)
    try:
        client.set_registered_model_alias(name, CHALLENGER, version.version)
        if promote:
            client.set_registered_model_alias(name, CHAMPION, version.version)
    except Exception:
        client.delete_model_version(name, version.version)  # never leave a version the gate did not finish
        raise
    client.set_tag(tracker.run_id, "registered_model_version", f"{name}/{version.version}")
    client.set_tag(tracker.run_id, "promotion.reason", reason[:TAG_LIMIT])
    log.info("registered %s version %s (%s): %s", name, version.version, CHAMPION if promote else CHALLENGER, reason)
    return Registration(name, int(version.version), promote, reason)


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


def _gate(tracker: RunTracker, evidence: Evidence) -> tuple[bool, str]:
    """The gate's verdict, with the champion (if any) scored on the challenger's own test texts: from its own
    evaluation's recorded predictions where it scored exactly these texts, else labelled by the champion now."""
    client, settings = tracker.client, tracker.config.tracking
    policy = PromotionPolicy(settings.promotion_margin, settings.max_source_drop, settings.promotion_alpha)
    champion = _champion(client, settings.registered_model)
    if champion is None:
        return decide_promotion(None, None, evidence.labels, policy)
    recorded = _recorded_predictions(client, champion.run_id)
    pairs = evidence.recorded(recorded) if recorded is not None else None
    how = " (its evaluation's recorded predictions on these texts)" if pairs is not None else ""
    if pairs is None:  # other texts than the champion's evaluation scored: the champion labels them now
        try:
            model = load_registered(f"models:/{settings.registered_model}/{champion.version}", tracker.uri)
            pairs = evidence.paired(model)
        except Exception as error:  # a champion whose files are gone, or that no longer loads: nothing moves
            return decide_promotion(None, None, evidence.labels, policy,
                                    unscored=f"version {champion.version}: {str(error).splitlines()[0][:300]}")
    promote, reason = decide_promotion(*pairs, evidence.labels, policy)
    return promote, f"against champion version {champion.version}{how}: {reason}"


def _recorded_predictions(client: Any, run_id: str | None) -> Any:
    """The predictions the evaluate stage of run `run_id` wrote (its `reports/predictions.csv`, which
    `RunTracker.log_evaluation` logs) as a frame of strings, or None where the run has none or it cannot be read."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="adaptflow-champion-") as scratch:
            path = client.download_artifacts(run_id, "reports/predictions.csv", scratch)
            return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (MlflowException, OSError, ValueError):
        return None


def _revalidate(tracker: RunTracker, model_md5: str, flow_run_id: str | None) -> Registration | None:
    """The version already registered for these model files, tagged as re-validated by this run; None if none."""
    from mlflow.exceptions import MlflowException

    client, name = tracker.client, tracker.config.tracking.registered_model
    try:
        versions = client.search_model_versions(f"name = '{name}' and tag.`model.md5` = '{model_md5}'")
    except MlflowException:
        return None
    if not versions:
        return None
    version = max(versions, key=lambda v: int(v.version))
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    client.set_model_version_tag(name, version.version, "revalidated.at", stamp)
    client.set_model_version_tag(name, version.version, "revalidated.by", flow_run_id or tracker.run_id)
    client.set_tag(tracker.run_id, "registered_model_version", f"{name}/{version.version}")
    reason = (f"every stage was cached: the model is version {version.version}'s (model md5 {model_md5[:12]}); "
              f"re-validated it, registered nothing new")
    log.info("%s", reason)
    return Registration(name, int(version.version), version.tags.get("promotion.promoted") == "true", reason,
                        reused=True)


def _version_tags(run_tags: dict[str, str], scores: Scores, promote: bool, reason: str,
                  model_md5: str | None) -> dict[str, str]:
    """Where the version came from (its run's data hashes, git commit, flow run and branch), its model files' md5,
    its scores and the gate's verdict."""
    tags = {key: value for key, value in run_tags.items() if key.startswith(RUN_TAGS_KEPT) or key == "branch"}
    if model_md5 is not None:
        tags["model.md5"] = model_md5
    tags.update({"target_macro_f1": f"{scores.target_macro_f1:.6f}", "promotion.promoted": str(promote).lower(),
                 "promotion.reason": reason[:TAG_LIMIT]})
    if scores.source_macro_f1 is not None:
        tags["source_macro_f1"] = f"{scores.source_macro_f1:.6f}"
    return tags


def _ensure_registered_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description="Fine-tuned by adaptflow for a target domain.")
        except MlflowException as error:  # a run beside this one created it since the lookup: use it
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise


def _version_of_flow_run(client: Any, name: str, flow_run_id: str | None) -> Any:
    if not flow_run_id:
        return None
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    return next((v for v in versions if v.tags.get("prefect.flow_run_id") == flow_run_id), None)


def _champion(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _requirements() -> list[str]:
    versions = package_versions(SERVED_PACKAGES)
    return [f"{name}=={version.split('+')[0]}" for name, version in versions.items()]
