"""The validation suite: each expectation passes on a good tiny frame and fails, with its message, on a bad one."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.config import ValidationConfig, build_config
from tasks.data_validation import validate_frames, validate_roles
from tasks.errors import ConfigError
from tasks.loading import load_roles
from tasks.validation import failure_line

LABELS = ("negative", "positive")
GOOD = pd.DataFrame({"text": [f"review number {i} is {'good' if i % 2 else 'bad'}" for i in range(24)],
                     "label": ["positive" if i % 2 else "negative" for i in range(24)]})


def failures(frame: pd.DataFrame, role: str = "source_train", **settings) -> dict[str, dict]:
    summary = validate_frames({role: frame}, ValidationConfig(**settings), LABELS, {role: "f.csv"})
    return {failure["check"]: failure for failure in summary["failures"]}


def with_text(index: int, text) -> pd.DataFrame:
    frame = GOOD.copy()
    frame["text"] = frame["text"].astype(object)
    frame.loc[index, "text"] = text
    return frame


def test_a_good_frame_passes_every_check():
    summary = validate_frames({"source_train": GOOD, "target_test": GOOD.iloc[:12]}, ValidationConfig(), LABELS,
                              {})
    assert summary["status"] == "passed" and summary["failures"] == []
    assert summary["roles"]["source_train"]["passed"] >= 10


@pytest.mark.parametrize("text, check", [
    (None, "text_not_null"),
    (42, "text_is_string"),
    ("", "text_not_blank"),
    ("ab", "text_length"),
    ("bad \x00 byte", "no_control_chars"),
])
def test_text_errors(text, check):
    found = failures(with_text(3, text))
    assert found[check]["severity"] == "error"
    assert found[check]["rows"] == [4]
    assert found[check]["unexpected_count"] == 1


@pytest.mark.parametrize("text", ["12345 678", "     ", "!!! ... ???"], ids=["numbers", "spaces", "punctuation"])
def test_texts_without_a_word_are_a_warning_naming_the_row(text):
    found = failures(with_text(3, text))
    assert found["text_has_words"]["severity"] == "warning"
    assert found["text_has_words"]["rows"] == [4] and found["text_has_words"]["unexpected_count"] == 1
    assert "text_not_blank" not in found


def test_a_text_in_any_script_has_words():
    assert "text_has_words" not in failures(with_text(3, "Отличный чайник 2024"))


def test_too_long_texts_fail_against_the_configured_bound():
    assert "text_length" in failures(with_text(0, "x" * 50), max_chars=40)


def test_mojibake_share_over_the_bound_is_a_warning():
    frame = GOOD.copy()
    frame.loc[:5, "text"] = "Ã©tÃ© was great â€™"
    found = failures(frame)
    assert found["mojibake_share"]["severity"] == "warning"
    assert found["mojibake_share"]["observed"] == pytest.approx(6 / 24)
    assert "mojibake_share" not in failures(frame, max_mojibake_share=0.5)


def test_duplicates_are_a_warning_naming_the_repeat():
    frame = with_text(5, GOOD.loc[1, "text"].upper() + "  ")
    found = failures(frame)
    assert found["duplicates"]["severity"] == "warning" and found["duplicates"]["rows"] == [6]


def test_labels_outside_the_source_set_fail():
    frame = GOOD.copy()
    frame.loc[2, "label"] = "neutral"
    assert failures(frame, role="target_test")["label_in_set"]["examples"]


def test_one_class_in_the_source_fails():
    found = failures(GOOD.assign(label="positive"))
    assert "min_classes" in found


def test_too_few_rows_of_a_class_fail_and_imbalance_warns():
    frame = pd.concat([GOOD[GOOD.label == "positive"], GOOD[GOOD.label == "negative"].iloc[:3]])
    found = failures(frame)
    assert found["min_per_class"]["severity"] == "error" and found["min_per_class"]["observed"] == 3
    assert found["class_balance"]["severity"] == "warning" and found["class_balance"]["observed"] == 4


def test_too_few_rows_fail_even_though_per_row_checks_pass_on_them():
    found = failures(GOOD.iloc[:10])
    assert found["row_count"]["observed"] == 10
    assert "expected at least 20 rows, found observed 10" in failure_line(found["row_count"])


def test_severity_can_be_configured():
    found = failures(with_text(5, GOOD.loc[1, "text"]), severity={"duplicates": "error"})
    assert found["duplicates"]["severity"] == "error"
    with pytest.raises(ConfigError, match="validation.severity: unknown check 'dupes'; valid checks: row_count"):
        build_config({"validation": {"severity": {"dupes": "error"}}})


def test_unlabelled_target_gets_text_checks_only():
    frame = pd.DataFrame({"text": GOOD["text"]})
    summary = validate_frames({"target_unlabeled": frame}, ValidationConfig(), LABELS, {})
    names = {f["check"] for f in summary["failures"]}
    assert summary["status"] == "passed" and not names


def test_truncation_share_is_reported(tiny_model_dir):
    from tasks.models import load_tokenizer

    frame = with_text(0, "word " * 100)
    summary = validate_frames({"source_train": frame}, ValidationConfig(), LABELS, {},
                              load_tokenizer(str(tiny_model_dir)), max_length=16)
    assert summary["truncated_share"]["source_train"] == pytest.approx(1 / 24, abs=1e-3)
    assert summary["status"] == "passed"
    strict = ValidationConfig(max_truncated_share=0.01)
    summary = validate_frames({"source_train": frame}, strict, LABELS, {}, load_tokenizer(str(tiny_model_dir)), 16)
    [failure] = summary["failures"]
    assert failure["check"] == "truncated_share" and failure["severity"] == "warning"
    assert summary["status"] == "passed_with_warnings"


def test_leaked_test_texts_fail_or_are_dropped(tmp_path):
    from tests.conftest import SAMPLE

    config = build_config({"data": {"source": str(SAMPLE / "kitchen.csv"), "target": None,
                                    "target_test": str(SAMPLE / "kitchen.csv")}})
    roles = load_roles(config.data, config.split)
    summary, _ = validate_roles(roles, config.validation, {"target_test": "kitchen.csv"})
    leakage = {f["check"]: f for f in summary["failures"]}["leakage"]
    assert leakage["severity"] == "error" and leakage["unexpected_count"] == 400 == summary["leaked"]
    dropping = config.validation.model_copy(update={"drop_leaked": True})
    summary, cleaned = validate_roles(roles, dropping, {})
    assert summary["dropped_leaked"] == 400 and cleaned.target_test.empty
