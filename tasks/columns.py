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


def _the_one(names: dict[str, str], candidates: tuple[str, ...], path: Path | str, what: str,
             option: str) -> str:
    """The one column named like `candidates`; a DataError naming the setting when there are none or several."""
    found = [names[name] for name in candidates if name in names]
    if len(found) > 1:
        raise DataError(f"{path}: several columns could be the {what} ({', '.join(found)}); name it with {option}")
    if not found:
        raise DataError(f"{path}: no {what} column found (looked for {', '.join(candidates)}; found: "
                        f"{', '.join(names.values())}); name it with {option}")
    return found[0]


def detect_text_columns(columns: Iterable[object], path: Path | str) -> list[str]:
    """The text columns of a table with `columns`: its one text-like column (`text` when there is one), after
    `title` when there is one."""
    names = _by_lower(columns)
    text = names["text"] if "text" in names else _the_one(
        names, TEXT_NAMES, path, "text", "--text-column C (repeat to join several) or data.text_columns")
    return ([names[TITLE]] if TITLE in names else []) + [text]


def detect_label_column(columns: Iterable[object], path: Path | str) -> str:
    """The label column of a table with `columns`."""
    return _the_one(_by_lower(columns), LABEL_NAMES, path, "label", "--label-column C or data.label_column")
