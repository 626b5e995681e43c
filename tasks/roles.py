"""Data roles: turning raw tables into `text`/`label` frames, seeded stratified splits, and one shared label set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tasks.columns import detect_text_columns
from tasks.errors import DataError
from tasks.text_checks import normalise

ROLES = ("source_train", "source_test", "target_labeled", "target_validation", "target_unlabeled", "target_test")


@dataclass(frozen=True)
class DataRoles:
    """The frames of one run; each has a `text` column, labelled ones a `label` column too."""

    source_train: pd.DataFrame
    source_test: pd.DataFrame
    target_labeled: pd.DataFrame
    target_validation: pd.DataFrame
    target_unlabeled: pd.DataFrame
    target_test: pd.DataFrame
    labels: tuple[str, ...]

    def frames(self) -> dict[str, pd.DataFrame]:
        return {role: getattr(self, role) for role in ROLES}


def to_examples(raw: pd.DataFrame, path: Path, text_columns: list[str] | None, label_column: str | None,
                separator: str = ". ") -> pd.DataFrame:
    """A frame with `text` (the text columns joined; None: the table's own, `detect_text_columns`) and, when
    `label_column` is given, `label`."""
    text_columns = text_columns or detect_text_columns(raw.columns, path)
    wanted = list(text_columns) + ([label_column] if label_column else [])
    missing = [column for column in wanted if column not in raw.columns]
    if missing:
        found = ", ".join(map(str, raw.columns))
        setting = "data.label_column" if missing[0] == label_column else "data.text_columns"
        raise DataError(f"{path}: missing column '{missing[0]}' (found: {found}); fix the file or set {setting}")
    text = _join_columns(raw, text_columns, separator)  # empty texts are kept: the validation suite reports them
    examples = pd.DataFrame({"text": text})
    if label_column:
        labels = raw[label_column]
        blank = labels.isna() | (labels.astype(str).str.strip() == "")
        if blank.any():
            row = int(blank.to_numpy().argmax()) + 1
            raise DataError(f"{path}: row {row} has an empty '{label_column}'; label it or drop that row")
        examples["label"] = labels.astype(str).str.strip()
    return examples.reset_index(drop=True)


def label_set(source: pd.DataFrame, path: Path, what: str = "the source") -> tuple[str, ...]:
    """The sorted labels of the source (or of `what`); at least two are needed to train a classifier."""
    labels = tuple(sorted(source["label"].unique()))
    if len(labels) < 2:
        raise DataError(f"{path}: {what} has only one class ({', '.join(labels)}); it needs at least two")
    return labels


def check_labels_known(frame: pd.DataFrame, labels: tuple[str, ...], role: str, path: Path) -> None:
    """Raise if `frame` holds a label the source lacks: the model could never predict it."""
    unknown = sorted(set(frame["label"]) - set(labels))
    if unknown:
        raise DataError(f"{path}: {role} has label '{_short(unknown[0])}' that the source lacks (source labels: "
                        f"{_listed(labels)}); add it to the source or map it to one of those")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _listed(labels: tuple[str, ...], most: int = 10) -> str:
    shown = ", ".join(_short(label) for label in labels[:most])
    return shown + (f", ... ({len(labels)} in all)" if len(labels) > most else "")


def split_off(frame: pd.DataFrame, size: int | float, seed: int, what: str,  # noqa: PYI041 (int: rows, float: share)
              path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, held_out): a seeded split stratified by label, `size` rows (or share) held out.

    Texts that are the same after folding case and white space stay on one side: the held-out part takes one copy
    of each of its texts and their other copies are dropped, so no held-out text leaks into `rest`.
    """
    if size == 0:
        return frame.reset_index(drop=True), frame.iloc[0:0].reset_index(drop=True)
    keys = normalise(frame["text"])
    unique = frame[~keys.duplicated(keep="first")]
    if isinstance(size, int) and size >= len(unique):
        raise DataError(f"{path}: {what} asks for {size} rows but the file has {len(unique)} distinct texts; "
                        "lower it")
    counts = unique["label"].value_counts()
    stratify = unique["label"] if counts.min() >= 2 else None
    from sklearn.model_selection import train_test_split

    try:
        _, held = train_test_split(unique, test_size=size, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise DataError(f"{path}: cannot split off {what} ({exc}); change the split sizes") from None
    rest = frame[~keys.isin(set(keys.loc[held.index]))]
    return rest.reset_index(drop=True), held.reset_index(drop=True)


def take_per_class(frame: pd.DataFrame, per_class: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(taken, rest): up to `per_class` seeded rows of each label, and everything else."""
    if per_class == 0:
        return frame.iloc[0:0].reset_index(drop=True), frame.reset_index(drop=True)
    shuffled = frame.sample(frac=1.0, random_state=seed)
    taken = shuffled.groupby("label", sort=True, group_keys=False).head(per_class)
    rest = frame.drop(index=taken.index)
    return taken.sort_index().reset_index(drop=True), rest.reset_index(drop=True)


def split_validation(labeled: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) from the labelled target; empty validation when there are too few rows per class."""
    empty = labeled.iloc[0:0].reset_index(drop=True)
    if fraction == 0 or labeled.empty:
        return labeled.reset_index(drop=True), empty
    counts = labeled["label"].value_counts()
    n_val = max(len(counts), round(len(labeled) * fraction))
    if counts.min() < 2 or n_val >= len(labeled):
        return labeled.reset_index(drop=True), empty
    from sklearn.model_selection import train_test_split

    train, val = train_test_split(labeled, test_size=n_val, random_state=seed, stratify=labeled["label"])
    return train.reset_index(drop=True), val.reset_index(drop=True)


def _join_columns(raw: pd.DataFrame, columns: list[str], separator: str) -> pd.Series:
    """The text columns of each row joined by `separator`, skipping empty cells."""
    parts = raw[columns].astype("string").fillna("")
    parts = parts.apply(lambda column: column.str.strip())
    if len(columns) == 1:
        return parts[columns[0]].astype(str)
    return parts.apply(lambda row: separator.join(cell for cell in row if cell), axis=1).astype(str)
