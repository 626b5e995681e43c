"""Which columns hold the text and the label: found by the names people use, asked for when ambiguous."""

from __future__ import annotations

import pytest

from tasks.columns import detect_label_column, detect_text_columns
from tasks.errors import DataError


@pytest.mark.parametrize(("columns", "expected"), [
    (["text", "label"], ["text"]),
    (["title", "text", "label"], ["title", "text"]),
    (["Review", "Sentiment"], ["Review"]),
    (["id", "sentence", "y"], ["sentence"]),
    (["title", "content", "class"], ["title", "content"]),
    (["text", "review", "label"], ["text"]),  # `text` is the text whatever else there is
])
def test_the_text_is_the_one_text_like_column_after_the_title(columns, expected):
    assert detect_text_columns(columns, "f.csv") == expected


def test_two_text_like_columns_without_text_is_a_question_not_a_guess():
    with pytest.raises(DataError, match=r"f.csv: several columns could be the text \(review, content\); name it "
                                        r"with --text-column"):
        detect_text_columns(["review", "content", "label"], "f.csv")


@pytest.mark.parametrize(("columns", "expected"), [(["text", "label"], "label"), (["review", "sentiment"], "sentiment"),
                                                   (["sentence", "Class"], "Class"), (["text", "y"], "y")])
def test_the_label_is_the_one_label_like_column(columns, expected):
    assert detect_label_column(columns, "f.csv") == expected


def test_no_or_two_label_like_columns_name_the_setting():
    with pytest.raises(DataError, match=r"no label column found \(looked for label, .*found: text, stars\); "
                                        r"name it with --label-column C"):
        detect_label_column(["text", "stars"], "f.csv")
    with pytest.raises(DataError, match=r"several columns could be the label \(label, sentiment\)"):
        detect_label_column(["text", "label", "sentiment"], "f.csv")
