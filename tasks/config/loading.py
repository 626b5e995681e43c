"""Reading, overriding, validating and serialising the config: `params.yaml` + `--set` -> AdaptflowConfig -> YAML.

Validation errors become one ConfigError naming the file, the key and the valid choices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tasks.config.pipeline import AdaptflowConfig
from tasks.errors import ConfigError


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.epochs=1` -> (["train", "epochs"], 1); the value is read as YAML (numbers, null, lists)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, for example --set train.epochs=1")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `raw` with each KEY=VALUE override set at its dotted path."""
    merged: dict[str, Any] = _deep_copy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = merged
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return merged


def build_config(raw: dict[str, Any], origin: str = "params") -> AdaptflowConfig:
    """Validate a plain mapping into the typed config, or raise ConfigError naming the key and the valid choices."""
    try:
        return AdaptflowConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_describe(exc.errors()[0])}") from None


def load_config(params_file: Path | None = None, overrides: list[str] | None = None) -> AdaptflowConfig:
    """Read `params_file` (YAML; defaults when None), apply overrides, and validate."""
    raw: dict[str, Any] = {}
    origin = "defaults"
    if params_file is not None:
        origin = str(params_file)
        raw = _read_yaml(params_file)
    return build_config(apply_overrides(raw, overrides or []), origin)


def dump_config(config: AdaptflowConfig) -> str:
    """The YAML text of a config, as `params.yaml` holds it."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def flatten_config(config: AdaptflowConfig) -> dict[str, Any]:
    """`{"train.epochs": 3, ...}`: the config as dotted keys."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            flat[prefix] = node

    walk("", config.model_dump(mode="json"))
    return flat


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found; pass --params FILE or create params.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); fix the file") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, split, model, ...), found {type(raw).__name__}")
    return raw


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        section = key.rpartition(".")[0]
        valid = ", ".join(_fields_at(section))
        where = f"in '{section}'" if section else "at the top level"
        return f"unknown key '{key}'; valid keys {where}: {valid}"
    value = error.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "literal_error":
        message = message.replace("Input should be", "choose one of")
    return f"{key}: {message}{shown}" if key else message  # an error of the whole config names its keys itself


def _fields_at(section: str) -> list[str]:
    model: type[BaseModel] = AdaptflowConfig
    for part in filter(None, section.split(".")):
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _deep_copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _deep_copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_deep_copy(value) for value in node]
    return node
