"""Data files inside archives (.zip, .tar, .tar.gz, .tgz), extracted safely: no member may land outside the
extraction directory (absolute paths, `..`, links pointing out) and no archive may expand without bound."""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from tasks.errors import DataError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
MAX_EXTRACTED_BYTES = 4 * 1024**3


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def safe_extract(archive: Path, destination: Path, max_bytes: int = MAX_EXTRACTED_BYTES) -> list[Path]:
    """Extract `archive` under `destination`; the regular files extracted (relative paths). Refuses, naming the
    member, anything that would write outside `destination` or expand past `max_bytes`."""
    destination.mkdir(parents=True, exist_ok=True)
    if archive.name.lower().endswith(".zip"):
        return _extract_zip(archive, destination, max_bytes)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:  # refused outright, not silently rewritten by the extraction filter
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts:
                    raise DataError(f"{archive}: member '{member.name}' would be written outside the extraction "
                                    "directory (absolute path or '..'); refusing the archive")
            total = sum(member.size for member in members if member.isfile())
            if total > max_bytes:
                raise DataError(f"{archive}: would expand to {total} bytes, over the limit of {max_bytes}; "
                                "extract it yourself and point data.* at the file")
            tar.extractall(destination, filter="data")
            return [Path(member.name) for member in members if member.isfile()]
    except tarfile.FilterError as exc:
        member = getattr(exc, "tarinfo", None)
        name = member.name if member is not None else "?"
        raise DataError(f"{archive}: member '{name}' would be written outside the extraction directory "
                        f"({type(exc).__name__}); refusing the archive") from None
    except tarfile.TarError as exc:
        raise DataError(f"{archive}: not a readable tar archive ({exc})") from None


def _extract_zip(archive: Path, destination: Path, max_bytes: int) -> list[Path]:
    try:
        with zipfile.ZipFile(archive) as bundle:
            infos = bundle.infolist()
            for info in infos:
                name = PurePosixPath(info.filename)
                mode = info.external_attr >> 16
                if name.is_absolute() or ".." in name.parts or "\\" in info.filename or stat.S_ISLNK(mode):
                    raise DataError(f"{archive}: member '{info.filename}' would be written outside the extraction "
                                    "directory (absolute path, '..' or a link); refusing the archive")
            total = sum(info.file_size for info in infos)
            if total > max_bytes:
                raise DataError(f"{archive}: would expand to {total} bytes, over the limit of {max_bytes}; "
                                "extract it yourself and point data.* at the file")
            bundle.extractall(destination)
            return [Path(info.filename) for info in infos if not info.is_dir()]
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive}: not a readable zip archive ({exc})") from None
