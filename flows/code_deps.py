"""Which source files a module runs: the transitive closure of its imports inside this project, read from the code
(every `import` and `from ... import`, at module level or inside functions), never listed by hand."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tasks", "flows")
# The registry imports every stage; a stage module imports it only to name, in an error message, the stage that
# writes a missing file. Following that import would make every stage depend on every other stage's code.
WIRING = ("flows.stage_registry",)


def module_path(name: str) -> Path | None:
    """The file of project module `name` (a package's `__init__.py`), or None for any other module."""
    if name.split(".")[0] not in PACKAGES or name in WIRING:
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=None)
def imported_modules(path: Path) -> frozenset[str]:
    """The project modules `path` imports, directly, with the packages that hold them."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    found = set()
    for name in names:
        parts = name.split(".")
        found.update(".".join(parts[:end]) for end in range(1, len(parts) + 1)
                     if module_path(".".join(parts[:end])) is not None)
    return frozenset(found)


def source_files(*modules: str) -> tuple[str, ...]:
    """Every project source file that importing `modules` runs, as sorted paths relative to the project root."""
    seen: set[Path] = set()
    pending = [path for path in map(module_path, modules) if path is not None]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        pending.extend(module_path(name) for name in imported_modules(path))
    return tuple(sorted(path.relative_to(ROOT).as_posix() for path in seen))
