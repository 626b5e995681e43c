"""Vocabulary substitution: domain-specific words, label-neutral candidates, the nearest-word mapping, rewriting."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.branching import build_shift_training_set
from tasks.config import StrategyConfig
from tasks.vocabulary import (
    domain_specific_words,
    label_neutral,
    substitute_frame,
    substitute_text,
    substitution_map,
)

BOOKS = ["The novel's author writes well", "a gripping novel, the author at her best", "the plot of this novel",
         "the author's second novel is dull", "I read the novel twice", "the novel has a slow plot"]


KITCHEN = ["the blender's motor is loud", "this blender crushes ice", "a blender with a weak motor",
           "the kettle and the blender broke", "the blender's lid leaks", "the motor of the kettle"]


def test_domain_specific_words_are_those_over_represented_on_one_side():
    assert domain_specific_words(BOOKS, KITCHEN, top=3, min_count=2) == ["novel", "author", "plot"]
    assert domain_specific_words(KITCHEN, BOOKS, top=2, min_count=2) == ["blender", "motor"]
    assert domain_specific_words(BOOKS, KITCHEN, top=3) == ["novel"]  # "author" is seen twice: below min_count
    assert "the" not in domain_specific_words(BOOKS, KITCHEN, top=50)  # stopwords are never mapped


def test_words_that_carry_the_label_are_never_substituted():
    texts = ["boring novel", "boring plot", "great novel", "great plot", "novel", "plot"]
    labels = ["negative", "negative", "positive", "positive", "negative", "positive"]
    assert label_neutral(["boring", "great", "novel", "plot"], texts, labels) == ["novel", "plot"]


def test_each_source_word_maps_to_its_nearest_target_word_above_the_similarity_floor():
    source_vectors = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    target_vectors = np.array([[0.9, 0.1], [0.1, 0.9]])
    mapping = substitution_map(["novel", "author", "chapter"], ["blender", "maker"], source_vectors, target_vectors,
                               min_similarity=0.5)
    assert mapping == {"novel": "blender", "author": "maker"}  # "chapter" is near nothing: left alone


def test_substitution_replaces_whole_words_keeps_capitals_and_is_seeded():
    mapping = {"novel": "blender", "author": "maker"}
    assert substitute_text("Novel by the author; novella stays", mapping) == "Blender by the maker; novella stays"
    frame = pd.DataFrame({"text": BOOKS, "label": ["positive"] * 6})
    changed, count = substitute_frame(frame, mapping, share=1.0, seed=0)
    assert count == 6 and not changed["text"].str.contains("novel").any()
    assert changed["label"].tolist() == frame["label"].tolist() and frame["text"].tolist() == BOOKS
    half, _ = substitute_frame(frame, mapping, share=0.5, seed=3)
    assert half.equals(substitute_frame(frame, mapping, share=0.5, seed=3)[0])


def test_the_shift_training_set_rewrites_a_share_of_the_source_with_the_mapping():
    source = pd.DataFrame({"text": BOOKS * 5, "label": ["a", "b"] * 15})
    target = pd.DataFrame({"text": KITCHEN[:2], "label": ["a", "b"]})
    strategy = StrategyConfig(shift_strategies=["vocabulary_substitution"], substitution_share=1.0)
    frame, applied = build_shift_training_set(source, target, strategy, None, [], seed=0,
                                              substitution={"novel": "blender"})
    assert applied[0].startswith("vocabulary_substitution (30 source texts rewritten with 1 word mappings")
    assert not frame[frame.domain == "source"]["text"].str.contains("novel").any()

