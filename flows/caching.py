"""Task caching for the flow: a re-run with unchanged inputs reuses completed steps instead of recomputing them.

A step's cache key hashes the config keys its stage and the upstream stages read (as the stage registry declares
them), the DVC md5 of every input data file, and the source files those stages run (their imports, as dvc.yaml
lists them). Prefect caches the task's result under that key; a stamp beside the outputs records the key that
produced them, so a cached result is only used when the files on disk are the ones it describes (otherwise the
task runs again and refreshes the cache).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any

from flows import stage_registry as registry
from flows.code_deps import ROOT
from flows.layout import input_files, layout_of
from tasks.atomic import write_json
from tasks.config import AdaptflowConfig, flatten_config
from tasks.provenance import dvc_md5


@lru_cache(maxsize=None)
def code_fingerprint(stage: str) -> str:
    """A hash of the source files `stage` and its upstream stages run: their changed code invalidates it."""
    digest = hashlib.sha256()
    files = sorted({path for name in registry.upstream_closure(stage) for path in registry.BY_NAME[name].code()})
    for path in files:
        digest.update(path.encode())
        digest.update((ROOT / path).read_bytes())
    return digest.hexdigest()


def data_hashes(config: AdaptflowConfig) -> dict[str, str]:
    from pathlib import Path

    return {field: dvc_md5(Path(path)) for field, path in input_files(config).items()}


def declared_keys(stage: str) -> set[str]:
    """The config keys `stage` and its upstream stages read."""
    return {key for name in registry.upstream_closure(stage) for key in registry.BY_NAME[name].params}


def stage_params(config: AdaptflowConfig, stage: str) -> dict[str, Any]:
    """The values of the params `stage` and its upstream stages read."""
    keys = declared_keys(stage)
    return {name: value for name, value in sorted(flatten_config(config).items())
            if registry.WHOLE_CONFIG in keys or any(name == key or name.startswith(key + ".") for key in keys)}


def stage_key(stage: str, params: dict[str, Any], hashes: dict[str, str], code: str) -> str:
    """The cache key of one step: pure in its params, the input data hashes and the code fingerprint."""
    payload = json.dumps({"stage": stage, "params": params, "data": hashes, "code": code}, sort_keys=True,
                         default=str)
    return f"adaptflow-{stage}-" + hashlib.sha256(payload.encode()).hexdigest()[:32]


def outputs_match(config: AdaptflowConfig, name: str, key: str) -> bool:
    """Whether the files on disk were written by a run of step `name` with this key."""
    try:
        return json.loads(layout_of(config).stamp(name).read_text(encoding="utf-8"))["key"] == key
    except (OSError, ValueError, KeyError):
        return False


def write_stamp(config: AdaptflowConfig, name: str, key: str) -> None:
    write_json(layout_of(config).stamp(name), {"key": key})


def clear_stamp(config: AdaptflowConfig, name: str) -> None:
    layout_of(config).stamp(name).unlink(missing_ok=True)


class StageCache:
    """The keys of one flow run's steps, computed once (data hashed once per run)."""

    def __init__(self, config: AdaptflowConfig) -> None:
        self.config = config
        self.hashes = data_hashes(config)

    def key(self, stage: str, step: str | None = None) -> str:
        """The key of `step` (a Prefect task name) of `stage`; the stage's first step when None."""
        step = step or registry.BY_NAME[stage].steps[0].task
        return stage_key(f"{stage}/{step}", stage_params(self.config, stage), self.hashes, code_fingerprint(stage))
