"""Domain-shift measures: MMD² with its permutation test, the proxy A-distance, and the text measures."""

from __future__ import annotations

import numpy as np
import pytest

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

