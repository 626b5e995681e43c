"""Reading tabular data files (CSV/TSV with any common delimiter, Excel, Parquet, JSON Lines, a `datasets`
save_to_disk dir; CSV/TSV/JSON Lines also gzip-compressed) into DataFrames.

Every failure is a DataError whose message names the file, and the line, byte offset or column where it can.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd

from tasks.archives import MAX_EXTRACTED_BYTES, is_archive, safe_extract
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
    ".xlsx": "excel",
    ".xlsm": "excel",
}
DELIMITERS = (",", ";", "\t", "|")
GZIP_READABLE = ("csv", "tsv", "jsonl")
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _is_gzip(path: Path) -> bool:
    return path.suffix.lower() == ".gz" and not path.name.lower().endswith(".tar.gz")


def detect_format(path: Path, fmt: str = "auto") -> str:
    """The format to read `path` with: the configured one, else a guess from its suffix (`x.csv.gz`: csv)."""
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "hf"
    suffix = Path(path.stem).suffix if _is_gzip(path) else path.suffix
    found = FORMAT_BY_SUFFIX.get(suffix.lower())
    if found is None:
        known = ", ".join(sorted(FORMAT_BY_SUFFIX))
        raise DataError(f"{path}: unknown file type '{suffix}'; use one of {known} (csv, tsv and jsonl also as "
                        ".gz) or set data.format")
    if _is_gzip(path) and found not in GZIP_READABLE:
        raise DataError(f"{path}: a gzip-compressed {found} file cannot be read; gzip only csv, tsv or jsonl files")
    return found


def read_table(path: Path, fmt: str = "auto", delimiter: str | None = None) -> pd.DataFrame:
    """Read a data file into a DataFrame of strings; raise DataError with a one-line reason if it can't be read.

    An archive (.zip, .tar, .tar.gz, .tgz) holding exactly one data file is read as that file, after a safe
    extraction into a temporary directory. A CSV's delimiter is `delimiter`, else detected from its header line.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path in params.yaml (data.*) or on the command line")
    if is_archive(path):
        return _read_archive(path, fmt, delimiter)
    kind = detect_format(path, fmt)
    if kind in ("csv", "tsv"):
        frame = _read_delimited(_raw_bytes(path), path, "\t" if kind == "tsv" else delimiter)
    elif kind == "jsonl":
        frame = _read_jsonl(_raw_bytes(path), path)
    else:
        frame = {"parquet": _read_parquet, "excel": _read_excel, "hf": _read_hf_dir}[kind](path)
    if frame.empty:
        raise DataError(f"{path}: has no data rows (empty or header only); add rows or pick another file")
    return frame


def _raw_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip-compressed (at most MAX_EXTRACTED_BYTES)."""
    if not _is_gzip(path):
        return path.read_bytes()
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read(MAX_EXTRACTED_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc}); re-compress it or give the plain file") from None
    if len(raw) > MAX_EXTRACTED_BYTES:
        raise DataError(f"{path}: expands past {MAX_EXTRACTED_BYTES} bytes; split the file")
    return raw


def _read_archive(path: Path, fmt: str, delimiter: str | None) -> pd.DataFrame:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="adaptflow-archive-") as temp:
        members = safe_extract(path, Path(temp))
        tables = [m for m in members if m.suffix.lower() in FORMAT_BY_SUFFIX and not m.name.startswith(".")]
        if len(tables) != 1:
            found = ", ".join(str(m) for m in tables) or "none"
            raise DataError(f"{path}: an archive must hold exactly one data file "
                            f"({', '.join(sorted(FORMAT_BY_SUFFIX))}); found {len(tables)}: {found}")
        try:
            return read_table(Path(temp) / tables[0], fmt, delimiter)
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


def sniff_delimiter(text: str) -> str:
    """The delimiter of a delimited text: of comma, semicolon, tab and |, the one its header line holds most of
    (outside quotes); a comma when it holds none."""
    header = re.sub(r'"[^"]*"', "", text.split("\n", 1)[0])
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])  # ties: the earlier in DELIMITERS
    return best if counts[best] else ","


def _read_delimited(raw: bytes, path: Path, delimiter: str | None) -> pd.DataFrame:
    if not raw.strip():
        raise DataError(f"{path}: is empty; expected a header row and data rows")
    text = decode_utf8(raw, path)
    delimiter = delimiter or sniff_delimiter(text)
    shown = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "|"}.get(delimiter, repr(delimiter))
    try:
        return pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        match = _RAGGED.search(str(exc))
        if match:
            expected, line, saw = match.groups()
            raise DataError(f"{path}: line {line} has {saw} fields, expected {expected} ({shown}-separated); quote "
                            "fields that contain the separator, or set data.delimiter") from None
        raise DataError(f"{path}: cannot parse as {shown}-separated text ({str(exc).strip()})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: is empty; expected a header row and data rows") from None


def _read_excel(path: Path) -> pd.DataFrame:
    """The first sheet of an Excel workbook, every cell as a string (empty cells missing)."""
    try:
        frame = pd.read_excel(path, sheet_name=0, dtype=str, engine="openpyxl")
    except ImportError:
        raise DataError(f"{path}: reading Excel files needs openpyxl; pip install openpyxl") from None
    except Exception as exc:  # noqa: BLE001 (openpyxl and zipfile raise several types for damaged files)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable Excel workbook ({reason}); re-save it as .xlsx or CSV") from None
    return frame.dropna(how="all")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 (pyarrow raises several types for damaged files)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable Parquet file ({reason}); re-export it") from None
    return frame


def _read_jsonl(raw: bytes, path: Path) -> pd.DataFrame:
    text = decode_utf8(raw, path)
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
