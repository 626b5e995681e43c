"""A sweep's results for people: one table row per candidate, and a bar plot of its scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.atomic import atomic_path


def table_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per candidate: its settings, selection and test scores, branch, worker and whether it won."""
    rows = []
    for result in summary["candidates"]:
        rows.append({"candidate": result["id"], **result["overrides"],
                     "selection_macro_f1": _rounded(result.get("selection_macro_f1")),
                     "selected_on": _selected_on(result),
                     "test_macro_f1": _rounded(result.get("test_macro_f1")),
                     "branch": result.get("branch", ""), "worker": result.get("worker", ""),
                     "seconds": result.get("seconds"), "error": result.get("error", ""),
                     "winner": result["id"] == summary["winner"]})
    return rows


def plot_scores(summary: dict[str, Any], path: Path) -> Path:
    """Validation (what picks the winner) and test macro-F1 per candidate, the winner marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    results = summary["candidates"]
    names = [result["id"] + (" *" if result["id"] == summary["winner"] else "") for result in results]
    positions = np.arange(len(results))
    figure, axis = plt.subplots(figsize=(max(6.0, 1.2 * len(results)), 4))
    for offset, key, label in ((-0.2, "selection_macro_f1", "selection (picks)"),
                               (0.2, "test_macro_f1", "target test (reported)")):
        axis.bar(positions + offset, [result.get(key) or 0.0 for result in results], width=0.4, label=label)
    axis.set_xticks(positions, names, rotation=30, ha="right")
    axis.set_ylabel("macro-F1")
    axis.set_title(f"sweep: winner * = {summary['winner']}")
    axis.legend(loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)
    return path


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _selected_on(result: dict[str, Any]) -> str:
    """What the selection score was computed on: 'validation (n=10)' or '5 folds (n=50)'."""
    if result.get("selection_n") is None:
        return ""
    folds = result.get("selection_folds", 1)
    return f"{folds} folds (n={result['selection_n']})" if folds > 1 else f"validation (n={result['selection_n']})"
