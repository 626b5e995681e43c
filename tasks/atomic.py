"""Writes that never leave a half-written file or directory behind: write to a temp path, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path` in one rename, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temp directory beside `path`; on success it takes the place of `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield temp
        replace_dir(temp, path)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def replace_dir(new: Path, path: Path) -> None:
    """Put directory `new` at `path`; an old `path` is moved aside first and removed only after the swap."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(new, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: Path, payload: Any) -> Path:
    return write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    with atomic_path(path) as temp:
        frame.to_parquet(temp, index=False)
    return Path(path)


def safe_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot be read as spreadsheet formulas (a leading =, +, -, @ gets a quote)."""
    def neutralise(value: Any) -> Any:
        if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
            return "'" + value
        return value

    return frame.apply(lambda column: column.map(neutralise) if column.dtype == object or
                       pd.api.types.is_string_dtype(column) else column)


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    with atomic_path(path) as temp:
        safe_csv_frame(frame).to_csv(temp, index=False)
    return Path(path)


def restore_known(values: list[str], known: AbstractSet[str]) -> list[str]:
    """`values` read back from a `write_csv` file, each one that `safe_csv_frame` quoted restored when it is one of
    `known` (a label set, say): the quote alone cannot tell a neutralised formula from a text that began with it."""
    return [value[1:] if value[:1] == "'" and value[1:] in known and value not in known else value
            for value in values]
