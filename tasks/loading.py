"""Load every data role named in the config and split them, seeded and stratified, into a DataRoles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tasks.config import DataConfig, SplitConfig
from tasks.errors import ConfigError
from tasks.roles import (
    DataRoles,
    check_labels_known,
    label_set,
    split_off,
    split_validation,
    take_per_class,
    to_examples,
)
from tasks.tables import read_table


def read_examples(path: Path, data: DataConfig, labelled: bool = True) -> pd.DataFrame:
    """Read one file and map its columns to `text` (and `label` when `labelled`)."""
    raw = read_table(confined(path, data.root), data.format, data.delimiter)
    return to_examples(raw, path, data.text_columns, data.label_column if labelled else None, data.text_separator)


def confined(path: Path, root: Path | None) -> Path:
    """`path`, if it resolves (links followed) inside `root` (no check when `root` is None); else ConfigError."""
    if root is None:
        return path
    resolved, allowed = Path(path).resolve(), Path(root).resolve()
    if resolved != allowed and allowed not in resolved.parents:
        raise ConfigError(f"{path}: resolves to {resolved}, outside data.root {allowed}; move the file under "
                          "data.root or change data.root")
    return path


def load_roles(data: DataConfig, split: SplitConfig) -> DataRoles:
    """Read the configured files and build every role, checking that all labels are known to the source. With no
    source (`data.source: null`) the source roles are empty and the labels are those of the labelled target files."""
    read = _reader(data)  # each file read once, though the labels of a run without a source need them first
    if not data.has_source:
        labels = target_labels(data, read)
        source_train = source_test = pd.DataFrame({"text": pd.Series(dtype=str), "label": pd.Series(dtype=str)})
    else:
        source_all = read_examples(data.source, data)
        labels = label_set(source_all, data.source)
        source_train, source_test = split_off(source_all, split.source_test_size, split.seed,
                                              "split.source_test_size", data.source)
    labeled, unlabeled, test = _target_roles(data, split, labels, read)
    labeled_train, validation = split_validation(labeled, split.validation_fraction, split.seed)
    return DataRoles(
        source_train=source_train,
        source_test=source_test,
        target_labeled=labeled_train,
        target_validation=validation,
        target_unlabeled=unlabeled,
        target_test=test,
        labels=labels,
    )


def target_labels(data: DataConfig, read: Callable[[Path], pd.DataFrame]) -> tuple[str, ...]:
    """The labels of every labelled target file (what a run without a source domain can predict; DataConfig
    requires data.target or data.target_test, so there is one)."""
    paths = [path for path in (data.target, data.target_labeled, data.target_test) if path is not None]
    return label_set(pd.concat([read(path) for path in paths], ignore_index=True), paths[0],
                     "the labelled target data")


def _reader(data: DataConfig) -> Callable[[Path], pd.DataFrame]:
    """`read_examples` of a labelled file, each path read once."""
    frames: dict[Path, pd.DataFrame] = {}

    def read(path: Path) -> pd.DataFrame:
        if path not in frames:
            frames[path] = read_examples(path, data)
        return frames[path]

    return read


def _target_roles(data: DataConfig, split: SplitConfig, labels: tuple[str, ...],
                  read: Callable[[Path], pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    unlabeled_parts: list[pd.DataFrame] = []
    if data.target is not None:
        target = read(data.target)
        check_labels_known(target, labels, "target", data.target)
        if data.target_test is None:
            rest, test = split_off(target, split.target_test_size, split.seed, "split.target_test_size", data.target)
        else:
            rest, test = target, _read_test(data.target_test, read, labels)
        labeled, remainder = take_per_class(rest, split.target_labeled_per_class, split.seed)
        unlabeled_parts.append(remainder[["text"]])
    elif data.target_test is not None:
        test = _read_test(data.target_test, read, labels)
        labeled = test.iloc[0:0]
    else:
        raise ConfigError("params: set data.target (one file to split) or data.target_test (a labelled test file)")
    if data.target_labeled is not None:
        extra = read(data.target_labeled)
        check_labels_known(extra, labels, "target_labeled", data.target_labeled)
        labeled = pd.concat([labeled, extra], ignore_index=True)
    if data.target_unlabeled is not None:
        unlabeled_parts.append(read_examples(data.target_unlabeled, data, labelled=False))
    unlabeled = pd.concat(unlabeled_parts, ignore_index=True) if unlabeled_parts else pd.DataFrame({"text": []})
    return labeled.reset_index(drop=True), unlabeled.reset_index(drop=True), test.reset_index(drop=True)


def _read_test(path: Path, read: Callable[[Path], pd.DataFrame], labels: tuple[str, ...]) -> pd.DataFrame:
    test = read(path)
    check_labels_known(test, labels, "target_test", path)
    return test
