"""The branch decision (a value and its reason) and the joint-training set it leads to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tasks.augmentation import augment_frame
from tasks.config import SimilarityConfig, StrategyConfig
from tasks.resampling import class_balance_weights, effective_sample_share
from tasks.results import Branch, JsonRecord
from tasks.vocabulary import substitute_frame

DEFAULT_BRANCH: Branch = "joint_training"
PREPARE_TIME = ("vocabulary_substitution", "importance_weighting", "class_balance", "augmentation")
TRAINING_TIME = ("target_mlm", "domain_adversarial")


@dataclass(frozen=True)
class Decision(JsonRecord):
    """Which branch runs, whether the domains were judged similar, and the rationale that is logged."""

    branch: Branch
    similar: bool | None
    rationale: str
    forced: bool
    measures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StrategyPlan:
    """Which strategies run where: while the training set is built, as objectives of the fine-tune, and whether
    the fine-tune self-trains (a second round on pseudo-labelled target texts)."""

    prepare: tuple[str, ...]
    objectives: tuple[str, ...]
    self_training: bool
    second_round_objectives: tuple[str, ...] = ()


def plan_strategies(branch: Branch, strategy: StrategyConfig, unlabeled: int | None = None) -> StrategyPlan:
    """The one place that decides it: the joint branch builds its set and fine-tunes, then self-trains when
    `strategy.joint_pseudo_labeling`; the few-shot path self-trains when `strategy.few_shot_pseudo_labeling`; the
    shift branch runs `strategy.shift_strategies` in their listed order, each at the time it acts, and self-trains
    when they list `pseudo_labeling`. Self-training needs unlabelled target texts (`unlabeled`, their count; None =
    not known yet). The second round keeps the target masked-LM but not the domain classifier, which learns on the
    prepared set's source and target rows in the first round."""
    has_unlabeled = unlabeled is None or unlabeled > 0
    if branch == "joint_training":
        return StrategyPlan(("joint_training",), (), strategy.joint_pseudo_labeling and has_unlabeled)
    if branch == "few_shot":
        return StrategyPlan(("few_shot",), (), strategy.few_shot_pseudo_labeling and has_unlabeled)
    chosen = strategy.shift_strategies
    objectives = tuple(name for name in chosen if name in TRAINING_TIME)
    return StrategyPlan(tuple(name for name in chosen if name in PREPARE_TIME), objectives,
                        "pseudo_labeling" in chosen and has_unlabeled,
                        tuple(name for name in objectives if name != "domain_adversarial"))


FEW_SHOT_PATH = ("the few-shot path ran on the labelled target texts alone (contrastive tuning of the encoder on "
                 "pairs of them, a probe head, then fine-tuning; no source row)")


def decide_branch(setting: str, measures: dict[str, float] | None = None,
                  thresholds: SimilarityConfig | None = None, has_source: bool = True) -> Decision:
    """The branch for `strategy.branch` = `setting`; `auto` decides from the measured domain shift.

    Similar (-> joint_training) when MMD² and the proxy A-distance are both at most their thresholds; otherwise
    dissimilar (-> shift_adaptation). The rationale names the values and thresholds that decided. Without a source
    domain (`has_source` false) there is nothing to measure or train on but the target: the few-shot path.
    """
    measures = measures or {}
    if not has_source and setting in ("auto", "few_shot"):
        return Decision("few_shot", None, "data.source is null: there is no source domain to measure the shift "
                        f"against or to train on, so {FEW_SHOT_PATH}", forced=False, measures=measures)
    if setting == "few_shot":
        return Decision("few_shot", None, f"strategy.branch is set to few_shot, so the measured shift did not "
                        f"decide: {FEW_SHOT_PATH}", forced=True, measures=measures)
    if setting != "auto":
        return Decision(setting, None, f"strategy.branch is set to {setting}, so the measured shift did not decide",
                        forced=True, measures=measures)
    if not measures or thresholds is None:
        return Decision(DEFAULT_BRANCH, None, "no domain-shift measure was computed, so the similarity check did "
                        f"not decide; the default branch {DEFAULT_BRANCH} ran", forced=False, measures=measures)
    checks = [("MMD²", measures["mmd2"], thresholds.mmd2_max),
              ("proxy A-distance", measures["proxy_a_distance"], thresholds.proxy_a_distance_max)]
    over = [(name, value, limit) for name, value, limit in checks if value > limit]
    stated = "; ".join(f"{name} {value:.4f} {'>' if value > limit else '<='} {limit:g}"
                       for name, value, limit in checks)
    extra = (f" (MMD permutation p = {measures.get('p_value', float('nan')):.3f}, unigram JS divergence "
             f"{measures.get('js_divergence', float('nan')):.3f}, target OOV rate {measures.get('oov_rate', 0):.1%})")
    if over:
        names = " and ".join(name for name, _, _ in over)
        return Decision("shift_adaptation", False, f"dissimilar: {stated}{extra}; {names} over the threshold, so "
                        "the target is treated as shifted and the shift-adaptation branch ran", False, measures)
    return Decision("joint_training", True, f"similar: {stated}{extra}; both within their thresholds, so source "
                    "and target are trained on jointly", False, measures)


def build_shift_training_set(source: pd.DataFrame, target: pd.DataFrame, strategy: StrategyConfig,
                             importance: np.ndarray | None, vocabulary: list[str], seed: int,
                             substitution: dict[str, str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The shift-adaptation branch's training set and the strategies it applied.

    Source rows are re-weighted (importance weighting by the domain classifier's odds, class balancing), a share of
    the source texts gets source-specific words replaced by target words of the same role (vocabulary
    substitution), the labelled target rows are augmented with in-domain edits, and the target part is weighted as
    in joint training. Strategies that act at training time (pseudo-labelling, target masked-LM) are not applied
    here.
    """
    applied = []
    planned = plan_strategies("shift_adaptation", strategy).prepare
    if "vocabulary_substitution" in planned and substitution:
        source, changed = substitute_frame(source, substitution, strategy.substitution_share, seed)
        shown = ", ".join(f"{a}->{b}" for a, b in list(substitution.items())[:5])
        applied.append(f"vocabulary_substitution ({changed} source texts rewritten with {len(substitution)} "
                       f"word mappings, e.g. {shown})")
    source_weights = np.ones(len(source))
    for name in planned:
        if name == "importance_weighting" and importance is not None:
            source_weights = source_weights * importance
            applied.append(f"importance_weighting (source weights {importance.min():.2f}..{importance.max():.2f}; "
                           f"effective source sample {effective_sample_share(importance):.0%} of {len(importance)} "
                           "rows)")
        elif name == "class_balance":
            source_weights = source_weights * class_balance_weights(source["label"])
            applied.append("class_balance")
    source_part = source[["text", "label"]].assign(domain="source", weight=source_weights / source_weights.mean())
    augmented = target.iloc[0:0]
    if "augmentation" in planned and strategy.augment_copies and not target.empty:
        augmented = augment_frame(target[["text", "label"]], strategy.augment_copies, vocabulary, seed,
                                  strategy.augment_rate)
        applied.append(f"augmentation ({len(augmented)} edited copies of {len(target)} labelled target texts)")
    target_part = pd.concat([target[["text", "label"]], augmented[["text", "label"]]], ignore_index=True)
    if target_part.empty:
        return source_part.reset_index(drop=True), applied
    weight = strategy.shift_target_weight if strategy.shift_target_weight is not None \
        else len(source) / len(target_part)
    target_part = target_part.assign(domain="target", weight=float(weight))
    return pd.concat([source_part, target_part], ignore_index=True), applied


def build_joint_training_set(source: pd.DataFrame, target: pd.DataFrame, target_weight: float | None) -> pd.DataFrame:
    """Source and labelled target rows together, with a `domain` and a per-sample `weight` column.

    With `target_weight` None each domain gets the same total weight (target rows are up-weighted by
    n_source / n_target); otherwise target rows get `target_weight` and source rows 1.
    """
    source_part = source[["text", "label"]].assign(domain="source", weight=1.0)
    if target.empty:
        return source_part.reset_index(drop=True)
    weight = target_weight if target_weight is not None else len(source) / len(target)
    target_part = target[["text", "label"]].assign(domain="target", weight=float(weight))
    return pd.concat([source_part, target_part], ignore_index=True)


def build_few_shot_training_set(labeled: pd.DataFrame, validation: pd.DataFrame) -> pd.DataFrame:
    """The few-shot path's training set: every labelled target text (the validation split's too: with a handful
    of labels none is held back), weight 1, no source row."""
    frame = pd.concat([labeled[["text", "label"]], validation[["text", "label"]]], ignore_index=True)
    return frame.assign(domain="target", weight=1.0)
