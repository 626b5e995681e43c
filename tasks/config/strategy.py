"""The strategy section: which branch adapts the model and what the shift-adaptation branch does."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tasks.config.sections import _Section

Branch = Literal["joint_training", "shift_adaptation", "few_shot"]
ShiftStrategy = Literal["importance_weighting", "class_balance", "augmentation", "vocabulary_substitution",
                       "pseudo_labeling", "target_mlm", "domain_adversarial"]
SHIFT_STRATEGIES: tuple[str, ...] = ShiftStrategy.__args__  # type: ignore[attr-defined]


class StrategyConfig(_Section):
    """Which branch adapts the model, how the joint branch weighs the target domain, and what the shift-adaptation
    branch does (its strategies compose, in the order listed)."""

    branch: Literal["auto", "joint_training", "shift_adaptation", "few_shot"] = Field(
        "auto", description="auto = the measured shift decides between joint_training and shift_adaptation; "
        "few_shot = the labelled target texts alone (no source row): the encoder is tuned contrastively on pairs of "
        "them (SetFit), a head is fitted as a probe, then the model fine-tunes on them.")
    target_weight: float | None = Field(
        1.0, gt=0, description="Joint branch: loss weight of each labelled target row (source rows weigh 1); null = "
        "both domains carry equal total weight. Measured on electronics -> kitchen (3 seeds): 1 beat equal totals "
        "by 1.5 points; the few target texts up-weighted ~40x are overfitted."
    )
    joint_pseudo_labeling: bool = Field(
        True, description="Joint branch: self-train as the shift branch does (pseudo_label_* settings) when there "
        "are unlabelled target texts: the joint model labels them and a second round learns from the confident ones "
        "with the source and target rows. Chosen on dev splits of electronics <-> kitchen, 3 seeds: +1.17 points "
        "over the joint branch without it, about 2.4x its training time (BENCHMARKS.md).")
    shift_target_weight: float | None = Field(
        3.65, gt=0, description="Shift-adaptation branch: loss weight of each labelled target row and its augmented "
        "copies (source rows weigh about 1); null = both domains carry equal total weight (about 13 per row for 1,600 "
        "source rows against 40 texts and 80 copies). 3.65 = sqrt(1600/120), the geometric middle of 1 and equal "
        "totals. Over 3 seeds of books <-> kitchen it scored +2.50 over source-only on average against +1.63 for "
        "equal totals and +1.67 for 1, and was never below source-only (BENCHMARKS.md, round 7)."
    )
    shift_strategies: list[ShiftStrategy] = Field(
        ["vocabulary_substitution", "class_balance", "augmentation", "pseudo_labeling"],
        description="What the shift_adaptation branch does (text rewriting, then weights, then augmentation, then "
                    "the training-time strategies): vocabulary_substitution, importance_weighting, class_balance, "
                    "augmentation, pseudo_labeling, target_mlm, domain_adversarial.",
    )
    augment_copies: int = Field(2, ge=0, description="Augmented copies per labelled target text.")
    augment_rate: float = Field(0.1, ge=0, le=0.5, description="Share of tokens swapped/deleted/inserted per copy.")
    importance_clip: float = Field(10.0, gt=1, description="Importance weights are clipped to [1/clip, clip].")
    substitution_share: float = Field(0.5, ge=0, le=1, description="Share of source texts whose source-specific "
                                      "words are replaced by target words of the same role.")
    substitution_vocabulary: int = Field(150, ge=1, description="Domain-specific words considered on each side.")
    substitution_min_similarity: float = Field(0.5, ge=-1, le=1, description="Least cosine similarity (word "
                                               "embeddings) for a source word to be mapped to a target word.")
    pseudo_label_threshold: float = Field(0.9, ge=0.5, le=1, description="Least confidence for an unlabelled "
                                          "target text to join the training set with its predicted label.")
    pseudo_label_max_per_class: int = Field(600, ge=1, description="Most pseudo-labelled texts per class "
                                            "(the most confident first; classes are kept equal). 600 beat 400 by "
                                            "0.3 points on books -> kitchen over 3 seeds (BENCHMARKS.md, round 6).")
    pseudo_label_epochs: int = Field(1, ge=1, description="Epochs of the second round, which continues from the "
                                     "first-round model on the prepared set and the pseudo-labelled target texts.")
    pseudo_label_with_source: bool = Field(
        True, description="The second round trains on the whole prepared set (source and labelled target, with "
        "their weights) plus the pseudo-labelled texts; false = on the labelled and pseudo-labelled target texts "
        "alone. Measured over 3 seeds at 400 per class (BENCHMARKS.md, round 6): with the source, books -> kitchen "
        "0.9167 against 0.9025 and kitchen -> books 0.8725 against 0.8683; never lower on a seed.")
    pseudo_label_student: Literal["continue", "fresh"] = Field(
        "continue", description="Where the second round starts: continue = from the first-round model; fresh = "
        "from the foundation model (a new student learns from the pseudo-labels rather than the teacher "
        "re-reading its own confident predictions).")
    mlm_weight: float = Field(1.0, gt=0, description="Weight of the target masked-LM loss added to the "
                              "classification loss (UDALM-style mixed objective).")
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="Share of target tokens masked.")
    mlm_head_warmup_steps: int = Field(200, ge=0, description="Masked target batches that train the new MLM head "
                                       "alone (encoder untouched) before the mixed objective starts; 0 = none.")
    adversarial_weight: float = Field(0.1, gt=0, description="domain_adversarial: the largest gradient-reversal "
                                      "scale (DANN's lambda, ramped up from 0 over training).")
    few_shot_pairs: int | None = Field(
        None, ge=1, description="few_shot: pairs per labelled text and round of setfit's pair sampling "
        "(num_iterations); null = setfit's oversampling of every unique pair (~1,250 pairs for 50 texts).")
    few_shot_epochs: int = Field(1, ge=1, description="few_shot: epochs of contrastive tuning over the pairs.")
    few_shot_learning_rate: float = Field(2e-5, gt=0, description="few_shot: learning rate of the contrastive "
                                          "tuning (setfit's default body learning rate).")
    few_shot_batch_size: int = Field(16, ge=2, description="few_shot: pairs per contrastive batch.")
    few_shot_pseudo_labeling: bool = Field(
        True, description="few_shot: self-train as the shift branch does (pseudo_label_* settings) when there are "
        "unlabelled target texts: the few-shot model labels them and a second round learns from the confident ones.")
