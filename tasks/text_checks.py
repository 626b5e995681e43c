"""Per-row facts about texts and labels that the validation suite's expectations check (pure pandas).

Each role's frame gets derived columns (`_blank`, `_no_words`, `_chars`, `_control`, `_mojibake`, `_duplicate`, `_leaked`,
`_class_count`, `_imbalance`, `_truncated`); the Great Expectations suite then states what each must be.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# C0 controls but tab, newline, carriage return and SUB (0x1A): SUB is what lossy legacy conversions write for an
# unmappable character (the real reviews hold some), so it counts as a substitution, like U+FFFD, not as a control.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x19\x1b-\x1f\x7f]")
# Typical UTF-8 read as Latin-1/CP-1252 ("Ã©", "â€™") and the substitution marks of a lossy decode.
MOJIBAKE = re.compile(r"Ã[\x80-\xbf¡-ÿ]|â€|Â[\x80-\xbf ]|\ufffd|\x1a")
_SPACE = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")  # a letter of any script


def normalise(texts: pd.Series) -> pd.Series:
    """Lower-case with runs of white space folded: the key for duplicate and leakage checks."""
    return texts.fillna("").astype(str).str.lower().map(lambda text: _SPACE.sub(" ", text).strip())


def derive_text_columns(frame: pd.DataFrame, token_counts: list[int] | None = None,
                        max_tokens: int | None = None) -> pd.DataFrame:
    """A copy of `frame` with the derived text columns added (the input is not changed)."""
    text = frame["text"]
    as_str = text.fillna("").astype(str)
    derived = frame.copy()
    derived["_not_string"] = text.map(lambda value: not (isinstance(value, str) or pd.isna(value))).astype(bool)
    derived["_blank"] = as_str == ""
    derived["_no_words"] = ~as_str.str.contains(_LETTER) & ~derived["_blank"]  # numbers, spaces, punctuation only
    derived["_chars"] = as_str.str.len()
    derived["_control"] = as_str.str.contains(CONTROL)
    derived["_mojibake"] = as_str.str.contains(MOJIBAKE).astype(float)
    derived["_duplicate"] = normalise(text).duplicated(keep="first") & ~(as_str.str.strip() == "")
    if token_counts is not None and max_tokens is not None:
        derived["_truncated"] = (np.asarray(token_counts) > max_tokens).astype(float)
    return derived


def derive_label_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with `_class_count` (rows of that row's class) and `_imbalance` (largest / smallest class)."""
    derived = frame.copy()
    counts = frame["label"].value_counts()
    derived["_class_count"] = frame["label"].map(counts).astype(float)
    derived["_imbalance"] = float(counts.max() / counts.min()) if len(counts) else 1.0
    return derived


def mark_leaked(test: pd.DataFrame, training_texts: list[pd.Series]) -> pd.Series:
    """True for each test row whose normalised text occurs in any of the training texts."""
    seen: set[str] = set()
    for texts in training_texts:
        seen.update(normalise(texts))
    seen.discard("")
    return normalise(test["text"]).isin(seen)
