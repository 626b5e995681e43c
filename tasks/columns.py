"""Which columns of a table hold the text and the label, detected from the names people give them.

`title` is optional: when the table has a `text` column (or one other text-like column) and a `title`, both are
joined, title first, as the Amazon reviews are; otherwise the one text-like column is the text. Two candidates where
one is needed is a question for the user, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tasks.errors import DataError

TITLE = "title"
TEXT_NAMES = ("text", "review", "review_text", "sentence", "content", "body", "comment", "document", "message")
LABEL_NAMES = ("label", "labels", "sentiment", "class", "category", "y")


def _by_lower(columns: Iterable[object]) -> dict[str, str]:
    return {str(column).strip().lower(): str(column) for column in columns}


def detect_text_columns(columns: Iterable[object], path: Path | str) -> list[str]:
    """The text columns of a table with `columns`: its one text-like column, after `title` when there is one."""
    names = _by_lower(columns)
    found = [names[name] for name in TEXT_NAMES if name in names]
    if "text" in names:
        found = [names["text"]]
    if len(found) > 1:
        raise DataError(f"{path}: several columns could be the text ({', '.join(found)}); name it with "
                        "--text-column C (repeat to join several) or data.text_columns")
    if not found:
        raise DataError(f"{path}: no text column found (looked for {', '.join(TEXT_NAMES)}; found: "
                        f"{', '.join(names.values())}); name it with --text-column C or data.text_columns")
    return ([names[TITLE]] if TITLE in names else []) + found


def detect_label_column(columns: Iterable[object], path: Path | str) -> str:
    """The label column of a table with `columns`."""
    names = _by_lower(columns)
    found = [names[name] for name in LABEL_NAMES if name in names]
    if len(found) > 1:
        raise DataError(f"{path}: several columns could be the label ({', '.join(found)}); name it with "
                        "--label-column C or data.label_column")
    if not found:
        raise DataError(f"{path}: no label column found (looked for {', '.join(LABEL_NAMES)}; found: "
                        f"{', '.join(names.values())}); name it with --label-column C or data.label_column")
    return found[0]
