"""Reading tabular data files (CSV/TSV, Parquet, JSON Lines, a `datasets` save_to_disk dir) into DataFrames.

Every failure is a DataError whose message names the file, and the line, byte offset or column where it can.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd

from tasks.archives import is_archive, safe_extract
from tasks.errors import DataError

FORMAT_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def detect_format(path: Path, fmt: str = "auto") -> str:
    """The format to read `path` with: the configured one, else a guess from its suffix."""
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "hf"
    found = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        known = ", ".join(sorted(FORMAT_BY_SUFFIX))
        raise DataError(f"{path}: unknown file type '{path.suffix}'; use one of {known} or set data.format")
    return found


def read_table(path: Path, fmt: str = "auto") -> pd.DataFrame:
    """Read a data file into a DataFrame of strings; raise DataError with a one-line reason if it can't be read.

    An archive (.zip, .tar, .tar.gz, .tgz) holding exactly one data file is read as that file, after a safe
    extraction into a temporary directory.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path in params.yaml (data.*) or on the command line")
    if is_archive(path):
        return _read_archive(path, fmt)
    kind = detect_format(path, fmt)
    readers = {"csv": _read_delimited, "tsv": _read_delimited, "parquet": _read_parquet, "jsonl": _read_jsonl,
               "hf": _read_hf_dir}
    frame = readers[kind](path, kind) if kind in ("csv", "tsv") else readers[kind](path)
    if frame.empty:
        raise DataError(f"{path}: has no data rows (empty or header only); add rows or pick another file")
    return frame


def _read_archive(path: Path, fmt: str) -> pd.DataFrame:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="adaptflow-archive-") as temp:
        members = safe_extract(path, Path(temp))
        tables = [m for m in members if m.suffix.lower() in FORMAT_BY_SUFFIX and not m.name.startswith(".")]
        if len(tables) != 1:
            found = ", ".join(str(m) for m in tables) or "none"
            raise DataError(f"{path}: an archive must hold exactly one data file "
                            f"({', '.join(sorted(FORMAT_BY_SUFFIX))}); found {len(tables)}: {found}")
        try:
            return read_table(Path(temp) / tables[0], fmt)
        except DataError as exc:  # name the member inside the archive, not the temporary file
            raise DataError(str(exc).replace(str(Path(temp) / tables[0]), f"{path}::{tables[0]}")) from None


def decode_utf8(raw: bytes, path: Path) -> str:
    """Decode bytes as UTF-8 (a leading BOM is dropped); name the byte offset of the first invalid byte."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: is UTF-16 encoded; re-save it as UTF-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        raise DataError(
            f"{path}: not valid UTF-8 at byte offset {exc.start} (byte 0x{bad:02x}); re-save the file as UTF-8"
        ) from None


def _read_delimited(path: Path, kind: str) -> pd.DataFrame:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: is empty; expected a header row and data rows")
    text = decode_utf8(raw, path)
    try:
        return pd.read_csv(io.StringIO(text), sep="\t" if kind == "tsv" else ",", dtype=str,
                           keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        match = _RAGGED.search(str(exc))
        if match:
            expected, line, saw = match.groups()
            raise DataError(f"{path}: line {line} has {saw} fields, expected {expected}; quote fields that "
                            "contain the separator") from None
        raise DataError(f"{path}: cannot parse as {kind.upper()} ({str(exc).strip()})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: is empty; expected a header row and data rows") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 (pyarrow raises several types for damaged files)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable Parquet file ({reason}); re-export it") from None
    return frame


def _read_jsonl(path: Path) -> pd.DataFrame:
    text = decode_utf8(path.read_bytes(), path)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg}); fix or remove that line") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {number} is a JSON {type(row).__name__}, expected an object per line")
        rows.append(row)
    return pd.DataFrame(rows)


def _read_hf_dir(path: Path) -> pd.DataFrame:
    import datasets  # imported here: it is slow to import and only this format needs it

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 (datasets raises many types for a bad dir)
        raise DataError(f"{path}: not a `datasets` save_to_disk directory ({exc}); point at a file or such a dir") from None
    if isinstance(loaded, datasets.DatasetDict):
        if len(loaded) != 1 and "train" not in loaded:
            raise DataError(f"{path}: holds splits {sorted(loaded)}; save one split or name the split directory")
        loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
    return loaded.to_pandas()
