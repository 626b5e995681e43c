"""Source re-weighting: importance weights, their effective sample, and class balance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.resampling import class_balance_weights, effective_sample_share, importance_weights

RNG = np.random.default_rng(0)


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

