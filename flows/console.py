"""How the command line talks to people: Prefect's defaults for a local run, one-line errors instead of the
tracebacks Prefect logs for expected failures, and transformers' loading chatter hidden."""

from __future__ import annotations

import logging
import os

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
