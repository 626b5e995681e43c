"""Where a run came from: DVC content hashes of its input files, the git commit, package versions."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from functools import lru_cache
from pathlib import Path

PACKAGES = ("adaptflow", "torch", "transformers", "prefect", "mlflow", "dvc", "great-expectations", "pandas",
            "scikit-learn")


def dvc_md5(path: Path) -> str:
    """The md5 DVC records for `path` in a .dvc file or dvc.lock: of the bytes for a file, of the sorted
    (relpath, md5) listing plus ".dir" for a directory."""
    from dvc_data.hashfile.hash import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    path = Path(path)
    if path.is_file():
        return _file_md5(path)
    if not path.is_dir():
        raise FileNotFoundError(path)
    tree = Tree()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        tree.add(file.relative_to(path).parts, Meta(size=file.stat().st_size), HashInfo("md5", _file_md5(file)))
    tree.digest()
    return tree.hash_info.value


def _file_md5(path: Path) -> str:
    """A file's md5, read once per process while its inode, size and modification time stay the same (DVC's own
    rule for re-hashing); the stage cache and the run's provenance tags both hash the inputs."""
    stat = path.stat()
    return _md5_of(os.fspath(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _md5_of(path: str, inode: int, size: int, mtime_ns: int) -> str:
    from dvc_data.hashfile.hash import file_md5

    return file_md5(path)


def git_commit(directory: Path = Path(".")) -> tuple[str | None, bool]:
    """(commit, dirty) of the git work tree holding `directory`; (None, False) outside git."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=10,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, False
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, bool(status)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages a run depends on (absent ones left out)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
