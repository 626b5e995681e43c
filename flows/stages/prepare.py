"""Build the adapted model's training set for the branch the similarity check chose."""

from __future__ import annotations

import pandas as pd

from flows.domain_shift import embed_pair, sample_texts
from flows.layout import Layout, layout_of, read_role, target_pool
from tasks.atomic import write_json, write_parquet
from tasks.augmentation import frequent_words
from tasks.branching import (
    Decision,
    build_few_shot_training_set,
    build_joint_training_set,
    build_shift_training_set,
    plan_strategies,
)
from tasks.config import AdaptflowConfig
from tasks.resampling import importance_weights
from tasks.results import PreparedSet, ValidationSummary
from tasks.vocabulary import domain_specific_words, label_neutral, substitution_map


def prepare(config: AdaptflowConfig, validation: ValidationSummary, decision: Decision) -> PreparedSet:
    """The training set of the branch `decision` names (what `adaptflow stage` runs; the flow calls the branch's
    own task instead)."""
    return BUILDERS[decision.branch](config, validation, decision)


def joint_training(config: AdaptflowConfig, validation: ValidationSummary, decision: Decision) -> PreparedSet:
    """Source rows plus the labelled target rows, each target row weighing `strategy.target_weight`."""
    layout = layout_of(config)
    frame = build_joint_training_set(read_role(layout, "source_train"), read_role(layout, "target_labeled"),
                                     config.strategy.target_weight)
    return _write(layout, frame, PreparedSet("joint_training", len(frame), ["joint_training"]))


def shift_adaptation(config: AdaptflowConfig, validation: ValidationSummary, decision: Decision) -> PreparedSet:
    """The shift branch's prepare-time strategies: vocabulary substitution, importance weighting, class balance and
    augmentation, as `plan_strategies` lists them."""
    layout = layout_of(config)
    strategy = config.strategy
    planned = plan_strategies("shift_adaptation", strategy).prepare
    source, target, pool = read_role(layout, "source_train"), read_role(layout, "target_labeled"), target_pool(layout)
    importance = None
    if "importance_weighting" in planned:
        sample = sample_texts(pool, config.similarity.sample_size, config.similarity.seed)
        source_vectors, target_vectors = embed_pair(config, source["text"].tolist(), sample["text"].tolist())
        importance = importance_weights(source_vectors, target_vectors,
                                        (1 / strategy.importance_clip, strategy.importance_clip),
                                        config.similarity.seed)
    substitution = vocabulary_mapping(config, source, pool["text"].tolist()) \
        if "vocabulary_substitution" in planned else None
    frame, applied = build_shift_training_set(source, target, strategy, importance,
                                              frequent_words(pool["text"].tolist()), config.split.seed,
                                              substitution)
    return _write(layout, frame, PreparedSet("shift_adaptation", len(frame), applied, substitution))


def few_shot(config: AdaptflowConfig, validation: ValidationSummary, decision: Decision) -> PreparedSet:
    """Every labelled target text and nothing else: the few-shot path trains on them alone."""
    layout = layout_of(config)
    frame = build_few_shot_training_set(read_role(layout, "target_labeled"), read_role(layout, "target_validation"))
    return _write(layout, frame, PreparedSet("few_shot", len(frame), [
        f"few_shot ({len(frame)} labelled target texts, no source row)"]))


BUILDERS = {"joint_training": joint_training, "shift_adaptation": shift_adaptation, "few_shot": few_shot}


def vocabulary_mapping(config: AdaptflowConfig, source: pd.DataFrame, target_texts: list[str]) -> dict[str, str]:
    """Source-specific word -> the target-specific word nearest to it (foundation-model embeddings of the words);
    source words that carry the label (sentiment words) are left out."""
    top = config.strategy.substitution_vocabulary
    source_texts = source["text"].tolist()
    source_words = label_neutral(domain_specific_words(source_texts, target_texts, top), source_texts,
                                 source["label"].tolist())
    target_words = domain_specific_words(target_texts, source_texts, top)
    if not source_words or not target_words:
        return {}
    source_vectors, target_vectors = embed_pair(config, source_words, target_words)
    return substitution_map(source_words, target_words, source_vectors, target_vectors,
                            config.strategy.substitution_min_similarity)


def _write(layout: Layout, frame: pd.DataFrame, prepared: PreparedSet) -> PreparedSet:
    write_parquet(layout.training_set, frame)
    write_json(layout.prepared, prepared.to_dict())
    return prepared
