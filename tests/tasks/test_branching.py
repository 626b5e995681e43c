"""The branch decision with its rationale, and the training sets each branch builds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.branching import (
    StrategyPlan,
    build_few_shot_training_set,
    build_shift_training_set,
    decide_branch,
    plan_strategies,
)
from tasks.config import SimilarityConfig, StrategyConfig


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



def test_the_plan_puts_each_shift_strategy_where_it_acts_in_the_listed_order():
    strategy = StrategyConfig(shift_strategies=["domain_adversarial", "augmentation", "pseudo_labeling", "target_mlm",
                                                "class_balance"])
    assert plan_strategies("shift_adaptation", strategy, unlabeled=100) == StrategyPlan(
        prepare=("augmentation", "class_balance"), objectives=("domain_adversarial", "target_mlm"),
        self_training=True, second_round_objectives=("target_mlm",))


def test_the_joint_branch_plans_its_set_alone_whatever_shift_strategies_are_listed():
    for listed in (["pseudo_labeling", "target_mlm", "augmentation"], []):
        strategy = StrategyConfig(shift_strategies=listed)  # self-training: its own switch, on by default
        assert plan_strategies("joint_training", strategy, unlabeled=100) == \
            StrategyPlan(("joint_training",), (), True)


def test_self_training_is_planned_only_with_unlabelled_target_texts_to_label():
    strategy = StrategyConfig(shift_strategies=["pseudo_labeling"])
    assert not plan_strategies("shift_adaptation", strategy, unlabeled=0).self_training
    assert plan_strategies("shift_adaptation", strategy, unlabeled=None).self_training  # not counted yet


def test_without_a_source_domain_auto_takes_the_few_shot_path_and_says_why():
    for setting in ("auto", "few_shot"):
        decision = decide_branch(setting, None, SimilarityConfig(), has_source=False)
        assert (decision.branch, decision.forced, decision.similar) == ("few_shot", False, None)
        assert decision.rationale.startswith("data.source is null: there is no source domain to measure")
        assert "few-shot path ran on the labelled target texts alone" in decision.rationale


def test_the_few_shot_branch_is_chosen_by_name_and_self_trains_when_asked_and_there_is_text_to_label():
    decision = decide_branch("few_shot", {"mmd2": 0.01, "proxy_a_distance": 0.1}, SimilarityConfig())
    assert (decision.branch, decision.forced, decision.similar) == ("few_shot", True, None)
    assert "few-shot path ran on the labelled target texts alone" in decision.rationale
    assert plan_strategies("few_shot", StrategyConfig(), unlabeled=100) == StrategyPlan(("few_shot",), (), True)
    assert not plan_strategies("few_shot", StrategyConfig(), unlabeled=0).self_training
    assert not plan_strategies("few_shot", StrategyConfig(few_shot_pseudo_labeling=False), unlabeled=100).self_training


def test_the_joint_branch_self_trains_by_default_when_there_is_text_to_label():
    assert plan_strategies("joint_training", StrategyConfig(), unlabeled=100) == \
        StrategyPlan(("joint_training",), (), True)
    assert not plan_strategies("joint_training", StrategyConfig(), unlabeled=0).self_training
    assert not plan_strategies("joint_training", StrategyConfig(joint_pseudo_labeling=False), unlabeled=100
                               ).self_training


def test_the_few_shot_training_set_is_every_labelled_target_text_and_no_source_row():
    labeled = pd.DataFrame({"text": ["a", "b"], "label": ["positive", "negative"]})
    validation = pd.DataFrame({"text": ["c"], "label": ["positive"]})
    frame = build_few_shot_training_set(labeled, validation)
    assert frame.to_dict("list") == {"text": ["a", "b", "c"], "label": ["positive", "negative", "positive"],
                                     "domain": ["target"] * 3, "weight": [1.0] * 3}
