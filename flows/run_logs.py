"""The engine's log lines (the `tasks` loggers: a fine-tune's progress, ...) in the Prefect run's log view, wherever
the run executes: this process, a process worker's subprocess, a Dask worker. Prefect sends only its own loggers'
records (and PREFECT_LOGGING_EXTRA_LOGGERS, read once when Prefect sets up logging, often before adaptflow is
imported); this hands the `tasks` loggers' records logged inside a flow or task run to Prefect's API log handler.
Outside a run (`dvc repro`, the CLI's own stages) nothing is sent and nothing is warned."""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

ENGINE_LOGGER = "tasks"


class InRunAPIHandler(APILogHandler):
    """Prefect's API log handler for records logged inside a flow or task run only."""

    def emit(self, record: logging.LogRecord) -> None:
        if TaskRunContext.get() is not None or FlowRunContext.get() is not None:
            super().emit(record)


def send_engine_logs_to_prefect() -> None:
    """Attach the handler once per process; INFO and above from the engine's loggers."""
    logger = logging.getLogger(ENGINE_LOGGER)
    if not any(isinstance(handler, InRunAPIHandler) for handler in logger.handlers):
        handler = InRunAPIHandler()
        handler.setLevel(logging.INFO)
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
