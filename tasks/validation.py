"""The validation suite for domain adaptation: which expectation each data role must meet, and how bad a miss is.

Checks are plain data (`Check`), built from the typed config; `tasks.gx_suite` runs them with Great Expectations
on the frames from `tasks.text_checks`, and `summarise` turns the results into the report people read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.config import ValidationConfig

DEFAULT_SEVERITY = {
    "row_count": "error", "text_is_string": "error", "text_not_null": "error", "text_not_blank": "error", "text_has_words": "warning",
    "text_length": "error",
    "no_control_chars": "error", "mojibake_share": "warning", "duplicates": "warning", "truncated_share": "warning",
    "label_in_set": "error", "min_classes": "error", "min_per_class": "error", "class_balance": "warning",
    "leakage": "error",
}
LABELLED = {"source_train", "source_test", "target_labeled", "target_validation", "target_test"}


@dataclass(frozen=True)
class Check:
    """One expectation: its name, the GX expectation and arguments, the column people know, severity, meaning."""

    name: str
    expectation: str
    kwargs: dict[str, Any]
    column: str
    severity: str
    meaning: str


@dataclass(frozen=True)
class CheckResult:
    """What one check found on one role."""

    role: str
    check: Check
    success: bool
    unexpected_count: int = 0
    observed: Any = None
    examples: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)


def build_checks(role: str, config: ValidationConfig, labels: tuple[str, ...], with_tokens: bool) -> list[Check]:
    """The checks for `role` (source_train, source_test, target_labeled, target_validation, target_unlabeled,
    target_test)."""
    def check(name: str, expectation: str, shown: str, meaning: str, **kwargs: Any) -> Check:
        severity = config.severity.get(name, DEFAULT_SEVERITY[name])
        return Check(name, expectation, kwargs, shown, severity, meaning)

    min_rows = {"source_train": config.min_rows_source, "target_test": config.min_rows_test}.get(role, 0)
    checks = [
        check("row_count", "ExpectTableRowCountToBeBetween", "(table)", f"at least {min_rows} rows",
              min_value=min_rows),
        check("text_is_string", "ExpectColumnValuesToBeInSet", "text", "text values are strings",
              column="_not_string", value_set=[False]),
        check("text_not_null", "ExpectColumnValuesToNotBeNull", "text", "no missing text", column="text"),
        check("text_not_blank", "ExpectColumnValuesToBeInSet", "text", "no empty text",
              column="_blank", value_set=[False]),
        check("text_has_words", "ExpectColumnValuesToBeInSet", "text",
              "texts with words (not only numbers, spaces or punctuation)", column="_no_words", value_set=[False]),
        check("text_length", "ExpectColumnValuesToBeBetween", "text",
              f"texts of {config.min_chars} to {config.max_chars} characters", column="_chars",
              min_value=config.min_chars, max_value=config.max_chars),
        check("no_control_chars", "ExpectColumnValuesToBeInSet", "text", "no NUL or control characters",
              column="_control", value_set=[False]),
        check("mojibake_share", "ExpectColumnMeanToBeBetween", "text",
              f"at most {config.max_mojibake_share:.0%} of texts with mojibake or U+FFFD", column="_mojibake",
              max_value=config.max_mojibake_share),
        check("duplicates", "ExpectColumnValuesToBeInSet", "text", "no duplicate texts (case and space folded)",
              column="_duplicate", value_set=[False]),
    ]
    if with_tokens:
        checks.append(check("truncated_share", "ExpectColumnMeanToBeBetween", "text",
                            f"at most {config.max_truncated_share:.0%} of texts cut at model.max_length",
                            column="_truncated", max_value=config.max_truncated_share))
    if role in LABELLED:
        checks.append(check("label_in_set", "ExpectColumnValuesToBeInSet", "label",
                            f"labels in the source's set ({', '.join(labels)})", column="label",
                            value_set=list(labels)))
    if role == "source_train":
        checks.append(check("min_classes", "ExpectColumnUniqueValueCountToBeBetween", "label", "at least 2 classes",
                            column="label", min_value=2))
    if role in ("source_train", "target_test"):
        checks += [
            check("min_per_class", "ExpectColumnMinToBeBetween", "label",
                  f"at least {config.min_per_class} rows per class", column="_class_count",
                  min_value=config.min_per_class),
            check("class_balance", "ExpectColumnMaxToBeBetween", "label",
                  f"largest class at most {config.max_imbalance:g}x the smallest", column="_imbalance",
                  max_value=config.max_imbalance),
        ]
    if role == "target_test":
        checks.append(check("leakage", "ExpectColumnValuesToBeInSet", "text",
                            "no test text also in source or target training data", column="_leaked",
                            value_set=[False]))
    return checks


def summarise(results: list[CheckResult], files: dict[str, str], seconds: float,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """role -> passed / warnings / errors, the failures with file, expectation, column, counts and examples."""
    roles: dict[str, dict[str, Any]] = {}
    failures = []
    for result in results:
        entry = roles.setdefault(result.role, {"file": files.get(result.role, ""), "passed": 0, "warnings": 0,
                                               "errors": 0})
        if result.success:
            entry["passed"] += 1
            continue
        entry["warnings" if result.check.severity == "warning" else "errors"] += 1
        failures.append({"role": result.role, "file": files.get(result.role, ""), "check": result.check.name,
                         "expectation": result.check.expectation, "column": result.check.column,
                         "severity": result.check.severity, "expected": result.check.meaning,
                         "unexpected_count": result.unexpected_count, "observed": result.observed,
                         "examples": result.examples, "rows": result.rows})
    errors = sum(entry["errors"] for entry in roles.values())
    warnings = sum(entry["warnings"] for entry in roles.values())
    status = "failed" if errors else ("passed_with_warnings" if warnings else "passed")
    return {"status": status, "errors": errors, "warnings": warnings, "seconds": round(seconds, 2), "roles": roles,
            "failures": failures, **(extra or {})}


def failure_line(failure: dict[str, Any]) -> str:
    """One line for a failed check: file, role, expectation, column, counts."""
    found = (f"{failure['unexpected_count']} rows" if failure["unexpected_count"]
             else f"observed {_short(failure['observed'])}")
    rows = failure.get("rows") or []
    where = f" (rows {', '.join(map(str, rows))}{', ...' if failure['unexpected_count'] > len(rows) else ''})" \
        if rows else ""
    examples = f"; e.g. {failure['examples'][0]!r}" if failure["examples"] else ""
    return (f"{failure['severity'].upper()} {failure['file']} [{failure['role']}] {failure['check']} "
            f"({failure['expectation']}, column {failure['column']}): expected {failure['expected']}, "
            f"found {found}{where}{examples}")


def summary_markdown(summary: dict[str, Any]) -> str:
    """The compact summary as markdown (the Prefect artifact)."""
    lines = [f"# Data validation: {summary['status']}", "",
             f"{summary['errors']} errors, {summary['warnings']} warnings, {summary['seconds']} s", "",
             "| role | file | passed | warnings | errors |", "|---|---|---|---|---|"]
    for role, entry in summary["roles"].items():
        lines.append(f"| {role} | {entry['file']} | {entry['passed']} | {entry['warnings']} | {entry['errors']} |")
    if summary["failures"]:
        lines += ["", "## Failed expectations", ""] + [f"- {failure_line(f)}" for f in summary["failures"]]
    for key in ("truncated_share", "dropped_leaked"):
        if key in summary:
            lines += ["", f"**{key}:** {summary[key]}"]
    return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)[:80]
