"""The MLflow store itself: which URI, whether it can be used, its schema lock, and retrying while it is locked.

`tracking.py` (runs) and `registry.py` (model versions and aliases) reach the store through these.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tasks.config import TrackingConfig
from tasks.errors import TrackingError

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_DB = "mlruns.db"
TAG_LIMIT = 5000  # characters kept of a long tag value (a rationale, a promotion reason)
# The MLflow 3 UI opens an experiment with this kind in its model-training view (runs, metrics, models), not the
# GenAI evaluation view it guesses for an experiment without one.
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
LOCK_RETRIES = 8  # attempts in all while a shared SQLite store answers "database is locked"
URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@/\s]+)@")


def resolve_uri(config: TrackingConfig) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else a SQLite store `mlruns.db` in the working directory."""
    return config.uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(DEFAULT_DB).resolve()}"


def local_artifact_root(uri: str) -> str | None:
    """For a SQLite store: `mlartifacts/` beside the database file (the server decides for http URIs)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
    return None


def run_page_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    """The run's page in the MLflow UI of an http(s) tracking server, opened in the model-training view: MLflow 3's
    UI picks its view from the `workflowType` parameter (else the browser's last choice, GenAI at first), not from
    the experiment's `mlflow.experimentKind` tag. None for a file or database store (no UI address to name)."""
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{redact(uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


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


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
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


def open_experiment(uri: str, experiment: str) -> tuple[Any, str]:
    """A client on `uri` (tracking and registry) and the id of `experiment`, created if new. The first access
    creates or migrates a SQLite schema, so it runs under `store_lock`."""
    from mlflow import MlflowClient

    with store_lock(uri):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_registered_models(max_results=1)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(
            experiment, artifact_location=local_artifact_root(uri))
        if found is None or found.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    return client, experiment_id


def is_locked(error: BaseException) -> bool:
    """Whether `error` is SQLite refusing a write because another process holds the database."""
    return "database is locked" in str(error)


def retry_when_locked(call: Callable[[], T], attempts: int = LOCK_RETRIES, first_wait: float = 0.25,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, tried again after waits that double from `first_wait` while a concurrent writer to a shared SQLite
    store makes it fail with "database is locked"; any other error, and the last attempt's, is raised."""
    for attempt in range(1, attempts):
        try:
            return call()
        except Exception as error:
            if not is_locked(error):
                raise
            log.warning("MLflow store busy (database is locked); retry %d of %d", attempt, attempts - 1)
            sleep(first_wait * 2 ** (attempt - 1))
    return call()


def timed(function: Callable[..., T]) -> Callable[..., T]:
    """Add the call's wall time to its first argument's `seconds` (what tracking costs a run, measured where it is
    spent), retrying the call while the store is locked."""
    @functools.wraps(function)
    def wrapper(owner: Any, *args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        try:
            return retry_when_locked(lambda: function(owner, *args, **kwargs))
        finally:
            owner.seconds += time.perf_counter() - started
    return wrapper
