"""Task caching for the flow: a re-run with unchanged inputs reuses completed stages instead of recomputing them.

A stage's cache key hashes the params it and its upstream stages read (`stages.STAGE_PARAMS`), the DVC md5 of every
input data file and the pipeline's code. Prefect caches the task's result under that key; a stamp beside the stage's
outputs records the key that produced them, so a cached result is only used when the files on disk are the ones it
describes (otherwise the task runs again and refreshes the cache).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from flows import stages
from tasks.atomic import write_json
from tasks.config import AdaptflowConfig, flatten_config
from tasks.provenance import dvc_md5

CODE_DIRS = ("tasks", "flows")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the pipeline's Python sources: changed code invalidates every cached stage."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for directory in CODE_DIRS:
        for path in sorted((root / directory).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def data_hashes(config: AdaptflowConfig) -> dict[str, str]:
    return {field: dvc_md5(Path(path)) for field, path in stages.input_files(config).items()}


def stage_params(config: AdaptflowConfig, stage: str) -> dict[str, Any]:
    """The values of the params `stage` and its upstream stages read."""
    flat = flatten_config(config)
    keys = {key for name in (*stages.UPSTREAM[stage], stage) for key in stages.STAGE_PARAMS[name]}
    return {name: value for name, value in sorted(flat.items())
            if any(name == key or name.startswith(key + ".") for key in keys)}


def stage_key(stage: str, params: dict[str, Any], hashes: dict[str, str], code: str) -> str:
    """The cache key of one stage: pure in its params, the input data hashes and the code fingerprint."""
    payload = json.dumps({"stage": stage, "params": params, "data": hashes, "code": code}, sort_keys=True,
                         default=str)
    return f"adaptflow-{stage}-" + hashlib.sha256(payload.encode()).hexdigest()[:32]


def stamp_path(config: AdaptflowConfig, stage: str) -> Path:
    return stages.layout_of(config).root / ".stamps" / f"{stage}.json"


def outputs_match(config: AdaptflowConfig, stage: str, key: str) -> bool:
    """Whether the files on disk were written by a run of `stage` with this key."""
    path = stamp_path(config, stage)
    try:
        return json.loads(path.read_text(encoding="utf-8"))["key"] == key
    except (OSError, ValueError, KeyError):
        return False


def write_stamp(config: AdaptflowConfig, stage: str, key: str) -> None:
    write_json(stamp_path(config, stage), {"key": key})


def clear_stamp(config: AdaptflowConfig, stage: str) -> None:
    stamp_path(config, stage).unlink(missing_ok=True)


class StageCache:
    """The keys of one flow run's stages, computed once (data hashed once per run)."""

    def __init__(self, config: AdaptflowConfig) -> None:
        self.config = config
        self.hashes = data_hashes(config)

    def key(self, stage: str) -> str:
        return stage_key(stage, stage_params(self.config, stage), self.hashes, code_fingerprint())

    def run(self, task: Any, stage: str, *args: Any) -> Any:
        """Run a Prefect task with this stage's cache key; refresh the cache when the outputs on disk differ."""
        key = self.key(stage)
        fresh = outputs_match(self.config, stage, key)
        clear_stamp(self.config, stage)  # a stage that fails part-way must not leave a stamp that vouches for it
        result = task.with_options(cache_key_fn=lambda *_: key, refresh_cache=not fresh)(self.config, *args)
        write_stamp(self.config, stage, key)
        return result
