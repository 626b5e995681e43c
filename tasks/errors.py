"""The exceptions adaptflow raises for problems a user can fix; the CLI prints them as one line."""

from __future__ import annotations


class AdaptflowError(Exception):
    """Base class: a problem with the user's input or environment, reported as one line."""

    exit_code = 1


class ConfigError(AdaptflowError):
    """A params file or override has an unknown key or an invalid value."""


class DataError(AdaptflowError):
    """A data file cannot be read or does not have the expected shape or content."""


class ValidationFailed(AdaptflowError):
    """An error-level data-validation expectation failed."""


class ModelError(AdaptflowError):
    """A model directory or id cannot be used safely (missing, unsafe weights, remote code, wrong labels)."""


class TrainingError(AdaptflowError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


class TrackingError(AdaptflowError):
    """The MLflow tracking server or registry cannot be reached or used."""
