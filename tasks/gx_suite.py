"""Run the validation checks with Great Expectations (GX Core 1.x, pandas data source).

Each run gets its own ephemeral (in-memory) context, never a shared config two runs could corrupt; the Data Docs
site it renders into a temp directory is moved into `docs_dir` whole.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.atomic import replace_dir
from tasks.validation import Check, CheckResult

log = logging.getLogger(__name__)
EXAMPLES = 3


def run_checks(frames: dict[str, pd.DataFrame], checks: dict[str, list[Check]],
               docs_dir: Path | None = None) -> list[CheckResult]:
    """Validate each role's frame (with derived columns) against its checks; render Data Docs into `docs_dir`."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # offline pipeline: no usage events sent anywhere
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from tasks.gx_views import site_config

    with tempfile.TemporaryDirectory(prefix="adaptflow-gx-") as root:
        site = Path(root) / "data_docs"
        context = gx.get_context(mode="ephemeral")  # in memory: 0.1 s less than a file context's stores on disk
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        for name in context.get_site_names():
            context.delete_data_docs_site(name)
        context.add_data_docs_site("local_site", site_config(str(site)))  # templates compiled once per machine
        source = context.data_sources.add_pandas(name="adaptflow")
        results: list[CheckResult] = []
        for role, frame in frames.items():
            batch = source.add_dataframe_asset(name=role).add_batch_definition_whole_dataframe(role)
            expectations = [getattr(gx.expectations, check.expectation)(
                **check.kwargs, meta={"check": check.name, "severity": check.severity}) for check in checks[role]]
            suite = context.suites.add(gx.ExpectationSuite(name=role, expectations=expectations))  # stored once
            definition = context.validation_definitions.add(gx.ValidationDefinition(data=batch, suite=suite,
                                                                                    name=role))
            outcome = definition.run(batch_parameters={"dataframe": frame}, result_format="COMPLETE")
            results += [_to_result(role, frame, checks[role], r) for r in outcome.results]
        if docs_dir is not None:
            # The stored results of every role, rendered once (a checkpoint per role re-rendered the whole site
            # each time, which was most of the validation's time).
            context.build_data_docs()
            if site.is_dir():
                docs_dir.parent.mkdir(parents=True, exist_ok=True)
                staged = docs_dir.with_name(f".{docs_dir.name}.{uuid.uuid4().hex}.tmp")
                shutil.move(site, staged)
                replace_dir(staged, docs_dir)
    return results


def _to_result(role: str, frame: pd.DataFrame, checks: list[Check], raw) -> CheckResult:
    name = raw.expectation_config.meta.get("check")
    check = next(c for c in checks if c.name == name)
    result: dict[str, Any] = raw.result or {}
    indexes = result.get("unexpected_index_list") or []
    examples = [_clip(frame["text"].iloc[i]) for i in indexes[:EXAMPLES] if isinstance(i, int)]
    observed = result.get("observed_value")
    if hasattr(observed, "item"):
        observed = observed.item()
    rows = [i + 1 for i in indexes[:EXAMPLES] if isinstance(i, int)]
    return CheckResult(role, check, bool(raw.success), int(result.get("unexpected_count") or 0), observed, examples,
                       rows)


def _clip(text: Any, width: int = 60) -> str:
    text = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    return text if len(text) <= width else text[: width - 1] + "…"
