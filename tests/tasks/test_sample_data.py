"""The embedded default data is exactly what the project's generator writes, and fit for a fine-tune."""

from __future__ import annotations

import pandas as pd

from tasks.sample_data import DOMAINS, write_sample_data
from tests.conftest import SAMPLE


def test_committed_sample_data_is_what_the_generator_writes(tmp_path):
    for path in write_sample_data(tmp_path):
        assert path.read_bytes() == (SAMPLE / path.name).read_bytes(), f"regenerate {path.name}: make sample-data"


def test_three_domains_of_balanced_labelled_reviews():
    for domain in DOMAINS:
        frame = pd.read_csv(SAMPLE / f"{domain}.csv")
        assert len(frame) == 400
        assert list(frame.columns) == ["review_id", "domain", "asin", "title", "text", "rating", "label"]
        assert 0.4 < (frame["label"] == "positive").mean() < 0.6
        assert frame["text"].nunique() > 300


def test_electronics_and_kitchen_share_more_words_than_books_does():
    def vocabulary(domain):
        frame = pd.read_csv(SAMPLE / f"{domain}.csv")
        return set(" ".join(frame["text"]).lower().split())

    books, electronics, kitchen = (vocabulary(d) for d in ("books", "electronics", "kitchen"))

    def jaccard(a, b):
        return len(a & b) / len(a | b)

    assert jaccard(electronics, kitchen) > jaccard(books, kitchen) + 0.05
    assert jaccard(electronics, kitchen) > jaccard(books, electronics) + 0.05
