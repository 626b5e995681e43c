"""Load and split every data role, validate them with the Great Expectations suite, write them for later stages."""

from __future__ import annotations

from flows.layout import layout_of
from tasks.atomic import write_json, write_parquet
from tasks.config import AdaptflowConfig
from tasks.data_validation import role_files, validate_roles
from tasks.errors import ValidationFailed
from tasks.loading import load_roles
from tasks.results import ValidationSummary
from tasks.validation import failure_line


def validate(config: AdaptflowConfig) -> ValidationSummary:
    """Read and split every data role, validate them (GX suite), and only if no error-level check failed write
    each role as Parquet for the later stages. Raises ValidationFailed with the first failure otherwise."""
    from tasks.models import load_tokenizer

    layout = layout_of(config)
    roles = load_roles(config.data, config.split)
    if config.validation.enabled:
        raw, roles = validate_roles(roles, config.validation, role_files(config.data),
                                    load_tokenizer(config.model.name_or_path), config.model.max_length,
                                    layout.data_docs)
    else:
        raw = {"status": "disabled", "errors": 0, "warnings": 0}
    counts = {name: len(frame) for name, frame in roles.frames().items()}
    summary = ValidationSummary.from_dict({**raw, "counts": counts})
    layout.data_docs.mkdir(parents=True, exist_ok=True)  # a DVC out, even when validation is disabled
    write_json(layout.validation, summary.to_dict())
    if summary.errors:
        raise ValidationFailed(validation_message(summary))
    for name, frame in roles.frames().items():
        write_parquet(layout.role(name), frame)
    write_json(layout.labels, list(roles.labels))
    return summary


def validation_message(summary: ValidationSummary) -> str:
    """One line: how many error-level checks failed, and the first of them."""
    errors = [failure for failure in summary.failures if failure["severity"] == "error"]
    more = f" (+{len(errors) - 1} more, see the validation summary)" if len(errors) > 1 else ""
    return f"data validation failed: {failure_line(errors[0])}{more}"
