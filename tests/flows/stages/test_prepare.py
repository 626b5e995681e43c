"""The prepare stage: the branch's training set, built with the foundation model's word embeddings."""

from __future__ import annotations

from flows.layout import layout_of, read_role, target_pool
from flows.stage_registry import run_stage
from tasks.config import StrategyConfig
from tasks.vocabulary import (
    domain_specific_words,
)
from tests.conftest import SAMPLE


def test_prepare_maps_words_with_the_foundation_model_and_records_the_mapping(tiny_config):
    config = tiny_config.model_copy(update={"strategy": StrategyConfig(
        branch="shift_adaptation", shift_strategies=["vocabulary_substitution"], substitution_min_similarity=-1.0)})
    config = config.model_copy(update={"data": config.data.model_copy(update={"source": SAMPLE / "books.csv"})})
    run_stage(config, "validate")
    run_stage(config, "similarity")
    summary = run_stage(config, "prepare")
    assert summary.substitutions, "books -> kitchen has domain-specific words on both sides"
    layout = layout_of(config)
    target_words = set(domain_specific_words(target_pool(layout)["text"].tolist(),
                                             read_role(layout, "source_train")["text"].tolist(), 150))
    assert set(summary.substitutions.values()) <= target_words
    assert summary.strategies[0].startswith("vocabulary_substitution")

