"""How the command line talks to people: Prefect's defaults for a local run, one-line errors instead of the
tracebacks Prefect logs for expected failures, and transformers' loading chatter hidden."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from tasks.errors import AdaptflowError

# Prefect's ephemeral API server needs ~20 s to start on 2 cores, its default limit; telemetry has no network here.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


class _OneLineErrors(logging.Filter):
    """Drop the traceback Prefect logs for an AdaptflowError: the CLI prints its one-line message instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], AdaptflowError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_expected_errors() -> None:
    """Attach the filter (once) to the loggers Prefect reports task and flow failures on."""
    for logger_name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(logger_name)
        if not any(isinstance(existing, _OneLineErrors) for existing in logger.filters):
            logger.addFilter(_OneLineErrors())


def quiet_transformers() -> None:
    """Hide transformers' weight-loading bars and the expected "classifier newly initialised" report."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def set_up_console(debug: bool) -> None:
    """Logging and environment defaults for one command (quiet expected errors unless `debug`)."""
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("tasks", "flows"):
        logging.getLogger(name).setLevel(logging.INFO)
    if not debug:
        quiet_expected_errors()
        quiet_transformers()


@contextmanager
def local_run() -> Iterator[None]:
    """Prefect settings for a flow run in this process: no flow-run heartbeats where the API is this process's
    ephemeral server (no PREFECT_API_URL).

    Heartbeats feed zombie-run detection, a proactive automation on a server that outlives the run; an ephemeral
    server runs no proactive triggers and stops with the process, so nothing reads them there. They are not free:
    Prefect 3.9 joins the heartbeat thread at the end of every flow run, and the thread sleeps in 1 s steps, so each
    run waited 0-1 s (0.5 s on average) for nothing. With an API URL set (a Prefect server, a deployment's
    worker) the heartbeats stay on."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
