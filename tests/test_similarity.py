"""Domain-shift measures, the branch decision and its rationale, the embedding cache, and the shift strategies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.augmentation import augment_frame, frequent_words
from tasks.branching import build_shift_training_set, decide_branch
from tasks.config import SimilarityConfig, StrategyConfig
from tasks.resampling import class_balance_weights, effective_sample_share, importance_weights
from tasks.similarity import js_divergence, label_shift, mmd_rbf, oov_rate, proxy_a_distance

RNG = np.random.default_rng(0)
SAME_A, SAME_B = RNG.normal(size=(200, 8)), RNG.normal(size=(200, 8))
SHIFTED = RNG.normal(loc=0.6, size=(200, 8))


def test_mmd_is_small_and_insignificant_for_one_distribution():
    result = mmd_rbf(SAME_A, SAME_B, permutations=200)
    assert result["p_value"] > 0.05 and result["mmd2"] < 0.01


def test_mmd_detects_a_shift_and_matches_the_direct_formula():
    result = mmd_rbf(SAME_A, SHIFTED, permutations=200)
    assert result["p_value"] < 0.01
    joint = np.vstack([SAME_A, SHIFTED])
    distances = ((joint[:, None] - joint[None]) ** 2).sum(-1)
    kernel = np.exp(-distances / result["bandwidth"])
    direct = kernel[:200, :200].mean() + kernel[200:, 200:].mean() - 2 * kernel[:200, 200:].mean()
    assert result["mmd2"] == pytest.approx(direct)


def test_proxy_a_distance_is_near_0_for_one_domain_and_near_2_for_separable_ones():
    assert proxy_a_distance(SAME_A, SAME_B)["proxy_a_distance"] < 0.5
    assert proxy_a_distance(SAME_A, SAME_A + 5.0)["proxy_a_distance"] > 1.9


def test_text_measures():
    assert js_divergence(["a b c"], ["a b c"]) == pytest.approx(0.0)
    assert js_divergence(["aa bb"], ["cc dd"]) == pytest.approx(1.0)
    assert oov_rate(["the kettle boils"], ["the novel boils"]) == pytest.approx(1 / 3)
    assert label_shift(["p", "n"], ["p", "p"]) == pytest.approx(0.5)


def test_the_decision_names_values_and_thresholds():
    thresholds = SimilarityConfig(mmd2_max=0.1, proxy_a_distance_max=1.9)
    near = decide_branch("auto", {"mmd2": 0.08, "proxy_a_distance": 1.85, "p_value": 0.005}, thresholds)
    assert (near.branch, near.similar, near.forced) == ("joint_training", True, False)
    assert "MMD² 0.0800 <= 0.1" in near.rationale and "proxy A-distance 1.8500 <= 1.9" in near.rationale
    far = decide_branch("auto", {"mmd2": 0.12, "proxy_a_distance": 1.85}, thresholds)
    assert (far.branch, far.similar) == ("shift_adaptation", False)
    assert "MMD² 0.1200 > 0.1" in far.rationale and "MMD² over the threshold" in far.rationale


def test_a_forced_branch_keeps_the_measures_but_says_it_was_forced():
    forced = decide_branch("joint_training", {"mmd2": 0.5, "proxy_a_distance": 2.0}, SimilarityConfig())
    assert forced.branch == "joint_training" and forced.forced and forced.measures["mmd2"] == 0.5
    assert "strategy.branch is set to joint_training" in forced.rationale


def test_embeddings_are_cached_by_content(tmp_path, tiny_model_dir, monkeypatch):
    from tasks import embeddings

    first = embeddings.embed_texts(["good kettle", "bad book"], str(tiny_model_dir), 16, tmp_path)
    assert first.shape == (2, 32) and np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)

    def no_compute(*args, **kwargs):
        raise AssertionError("cached texts were embedded again")

    monkeypatch.setattr(embeddings, "_compute", no_compute)
    again = embeddings.embed_texts(["bad book", "good kettle"], str(tiny_model_dir), 16, tmp_path)
    assert np.allclose(again, first[::-1])


def test_a_damaged_cache_shard_is_ignored(tmp_path, tiny_model_dir):
    from tasks.embeddings import embed_texts

    first = embed_texts(["good kettle"], str(tiny_model_dir), 16, tmp_path)
    for shard in tmp_path.rglob("shard-*.npz"):
        shard.write_bytes(b"not a zip")
    assert np.allclose(embed_texts(["good kettle"], str(tiny_model_dir), 16, tmp_path), first, atol=1e-5)


def test_importance_weights_favour_source_rows_that_look_like_the_target():
    source = np.vstack([RNG.normal(size=(100, 4)), RNG.normal(loc=3.0, size=(100, 4))])
    target = RNG.normal(loc=3.0, size=(100, 4))
    weights = importance_weights(source, target)
    assert weights.mean() == pytest.approx(1.0)
    assert weights[100:].mean() > 5 * weights[:100].mean()


def test_importance_weights_stay_spread_when_the_domains_are_separable():
    # most source rows are far from the target, a few sit inside it (as with real, separable review domains)
    source = np.vstack([RNG.normal(size=(290, 4)), RNG.normal(loc=19.0, size=(10, 4))])
    target = RNG.normal(loc=20.0, size=(300, 4))
    weights = importance_weights(source, target)
    assert effective_sample_share(weights) > 0.3  # not a handful of rows carrying all the weight
    assert weights.max() / np.median(weights) <= 10 + 1e-9


def test_the_effective_sample_share_is_one_for_equal_weights_and_the_carrying_share_for_all_or_nothing_weights():
    assert effective_sample_share(np.full(50, 3.0)) == pytest.approx(1.0)
    assert effective_sample_share(np.r_[np.ones(10), np.zeros(40)]) == pytest.approx(0.2)


def test_class_balance_gives_each_class_the_same_total_weight():
    labels = pd.Series(["a"] * 30 + ["b"] * 10)
    weights = class_balance_weights(labels)
    assert weights[:30].sum() == pytest.approx(weights[30:].sum())


def test_augmentation_is_seeded_keeps_labels_and_uses_in_domain_words():
    frame = pd.DataFrame({"text": ["the kettle boils water fast and quietly"] * 2, "label": ["positive", "negative"]})
    vocabulary = frequent_words(["blender blender motor", "motor lid"])
    first = augment_frame(frame, 3, vocabulary, seed=1)
    assert len(first) == 6 and first["label"].tolist() == ["positive"] * 3 + ["negative"] * 3
    assert first.equals(augment_frame(frame, 3, vocabulary, seed=1))
    assert any(word in " ".join(first["text"]) for word in vocabulary)
    assert (first["text"] != frame["text"][0]).any()


def test_the_shift_training_set_applies_the_configured_strategies():
    source = pd.DataFrame({"text": [f"s{i}" for i in range(30)], "label": ["a"] * 20 + ["b"] * 10})
    target = pd.DataFrame({"text": ["t one two three", "t four five six"], "label": ["a", "b"]})
    strategy = StrategyConfig(shift_strategies=["importance_weighting", "class_balance", "augmentation"],
                              shift_target_weight=None)
    frame, applied = build_shift_training_set(source, target, strategy, np.linspace(0.5, 1.5, 30), ["word"], seed=0)
    assert [name.split(" ")[0] for name in applied] == ["importance_weighting", "class_balance", "augmentation"]
    assert "effective source sample 92% of 30 rows" in applied[0]
    assert len(frame) == 30 + 2 + 4
    source_part, target_part = frame[frame.domain == "source"], frame[frame.domain == "target"]
    assert source_part["weight"].mean() == pytest.approx(1.0)
    assert target_part["weight"].sum() == pytest.approx(30.0)  # null: both domains carry the same total weight


def test_by_default_each_labelled_target_row_and_copy_weighs_the_configured_weight():
    source = pd.DataFrame({"text": [f"s{i}" for i in range(30)], "label": ["a"] * 15 + ["b"] * 15})
    target = pd.DataFrame({"text": ["t one two three", "t four five six"], "label": ["a", "b"]})
    strategy = StrategyConfig(shift_strategies=["augmentation"])
    frame, _ = build_shift_training_set(source, target, strategy, None, ["word"], seed=0)
    target_part = frame[frame.domain == "target"]
    assert len(target_part) == 2 * (1 + strategy.augment_copies)
    assert strategy.shift_target_weight == 3.65 and (target_part["weight"] == 3.65).all()
    assert (frame.loc[frame.domain == "source", "weight"] == 1.0).all()
