"""Fine-tune the source-only baseline and the adapted model; self-train in a second round when the branch's plan
says so (tasks.branching.plan_strategies)."""

from __future__ import annotations

import pandas as pd

from flows import self_training
from flows.layout import Layout, layout_of, read_json, read_labels, read_parquet, read_role, target_pool
from flows.progress_artifacts import progress_artifact
from tasks.atomic import write_json, write_parquet
from tasks.branching import plan_strategies
from tasks.config import AdaptflowConfig
from tasks.contrastive import contrastive_key, contrastive_tune
from tasks.objectives.domain_adversarial import AdversarialObjective
from tasks.objectives.masked_lm import MaskedLMObjective
from tasks.results import Branch, ModelRole, PreparedSet, PseudoLabels, TrainSummary, ValidationSummary
from tasks.training import TrainResult, fine_tune


def fine_tune_baseline(config: AdaptflowConfig, validation: ValidationSummary, progress: bool = True) -> TrainSummary:
    """The source-only baseline: source data alone, no target row, not even for early stopping."""
    layout = layout_of(config)
    result = fine_tune(read_role(layout, "source_train"), read_role(layout, "target_validation").iloc[0:0],
                       read_labels(layout), config.model.name_or_path, config.model.max_length, config.train,
                       layout.model("baseline"), layout.checkpoints, progress=progress,
                       on_progress=progress_artifact("fine-tune-baseline", "Source-only baseline: share trained"))
    return _written(layout, summarise("baseline", result))


def fine_tune_adapted(config: AdaptflowConfig, validation: ValidationSummary, prepared: PreparedSet,
                      progress: bool = True) -> TrainSummary:
    """The adapted model on the prepared set, with the branch's training-time objectives. When the plan
    self-trains, this is the first round (the teacher), saved apart from the adapted model."""
    layout = layout_of(config)
    plan = plan_strategies(prepared.branch, config.strategy, validation.counts.get("target_unlabeled", 0))
    objectives = build_objectives(config, layout, plan.objectives)
    output = layout.first_round if plan.self_training else layout.model("adapted")
    training_set, validation_set = read_parquet(layout.training_set), validation_texts(layout, prepared.branch)
    model_name, train_config, described = config.model.name_or_path, config.train, []
    if prepared.branch == "few_shot":
        model_name, described = few_shot_encoder(config, layout, training_set, progress)
        train_config = config.train.model_copy(update={"head_init": "probe"})
    result = fine_tune(training_set, validation_set, read_labels(layout), model_name, config.model.max_length,
                       train_config, output, layout.checkpoints, progress=progress, objectives=objectives,
                       on_progress=progress_artifact("fine-tune-adapted", "Adapted model: share trained"))
    summary = summarise("adapted", result, described + [objective.describe() for objective in objectives])
    if plan.self_training:
        return summary
    write_parquet(layout.pseudo_labels, self_training.empty_pseudo_labels())  # a DVC out of this stage
    write_json(layout.pseudo_label_summary, PseudoLabels(0, 0).to_dict())
    return _written(layout, summary)


def validation_texts(layout: Layout, branch: Branch) -> pd.DataFrame:
    """The labelled target texts a branch validates on: none in the few-shot branch, whose training set holds them."""
    validation = read_role(layout, "target_validation")
    return validation.iloc[0:0] if branch == "few_shot" else validation


def few_shot_encoder(config: AdaptflowConfig, layout: Layout, training_set, progress: bool) -> tuple[str, list[str]]:
    """The few-shot path's encoder, contrastively tuned on the training set's labelled texts (reused while the
    texts, the model and the strategy.few_shot_* settings hold), and the line that describes it."""
    texts, labels = training_set["text"].tolist(), training_set["label"].tolist()
    key = contrastive_key(texts, labels, config.model.name_or_path, config.model.max_length, config.strategy,
                          config.train.seed)
    encoder = layout.few_shot_encoder(key)
    reused = encoder.is_dir()
    if not reused:
        contrastive_tune(texts, labels, config.model.name_or_path, config.model.max_length, config.strategy,
                         config.train.seed, encoder, progress)
    pairs = "every unique pair, oversampled" if config.strategy.few_shot_pairs is None else \
        f"{config.strategy.few_shot_pairs} pair rounds"
    described = (f"contrastive_tuning (setfit: {len(texts)} labelled target texts, {pairs}, "
                 f"{config.strategy.few_shot_epochs} epoch(s){'; reused' if reused else ''}), probe head")
    return str(encoder), [described]


def pseudo_label(config: AdaptflowConfig, validation: ValidationSummary, first: TrainSummary) -> PseudoLabels:
    """The first-round model's confident, class-balanced labels of the unlabelled target texts."""
    layout = layout_of(config)
    pseudo, counts = self_training.label_unlabeled(config, first.model_dir, read_role(layout, "target_unlabeled"),
                                                   read_labels(layout))
    write_parquet(layout.pseudo_labels, pseudo)
    write_json(layout.pseudo_label_summary, counts.to_dict())
    return counts


def fine_tune_round_2(config: AdaptflowConfig, validation: ValidationSummary, first: TrainSummary,
                      pseudo: PseudoLabels, progress: bool = True) -> TrainSummary:
    """Self-training's second round on the prepared set plus the pseudo-labels; the first-round model is kept as
    the adapted model when no text reached the threshold in every class."""
    layout = layout_of(config)
    branch = PreparedSet.from_dict(read_json(layout.prepared)).branch
    plan = plan_strategies(branch, config.strategy)
    second = self_training.second_round_set(config, read_parquet(layout.training_set),
                                            read_parquet(layout.pseudo_labels))
    validation_set = validation_texts(layout, branch)
    strategies = [*first.strategies, self_training.describe(pseudo, config, branch)]
    round_1 = {"history": first.history, "best_epoch": first.best_epoch, "reused": first.reused}
    if pseudo.selected == 0 or second.empty:
        self_training.adopt_teacher(first.model_dir, layout.model("adapted"))
        round_1["round_2"] = "skipped: no unlabelled target text reached the confidence threshold in every class"
        return _written(layout, TrainSummary("adapted", str(layout.model("adapted")), first.history,
                                             first.best_epoch, first.stopped_early, first.n_train,
                                             first.resumed_from_epoch, strategies, first.reused, pseudo, round_1))
    result = self_training.train_second_round(
        fine_tune, config, first.model_dir, second, validation_set, read_labels(layout),
        layout.model("adapted"), layout.checkpoints, progress,
        build_objectives(config, layout, plan.second_round_objectives),
        progress_artifact("fine-tune-round-2", "Self-training's second round: share trained"))
    offset, steps_before = len(first.history), _last_step(first.history)
    history = [{**row, "round": 1} for row in first.history] + \
        [{**row, "epoch": row["epoch"] + offset, "round": 2,
          "steps": [{**step, "step": step["step"] + steps_before} for step in row.get("steps", [])]}
         for row in result.history]
    return _written(layout, TrainSummary("adapted", str(result.model_dir), history, result.best_epoch + offset,
                                         result.stopped_early, first.n_train + pseudo.selected,
                                         result.resumed_from_epoch, strategies, False, pseudo, round_1))


def train(config: AdaptflowConfig, validation: ValidationSummary, prepared: PreparedSet,
          progress: bool = True) -> TrainSummary:
    """The adapted model as `adaptflow stage` trains it: the same steps the flow runs as separate tasks."""
    first = fine_tune_adapted(config, validation, prepared, progress)
    if not plan_strategies(prepared.branch, config.strategy, validation.counts.get("target_unlabeled", 0)
                           ).self_training:
        return first
    return fine_tune_round_2(config, validation, first, pseudo_label(config, validation, first), progress)


def _last_step(history: list[dict]) -> int:
    """The global step the history ends on (round 2's steps count on from there)."""
    return max((step["step"] for row in history for step in row.get("steps", [])), default=0)


def build_objectives(config: AdaptflowConfig, layout: Layout, names: tuple[str, ...]) -> list:
    """The training-time objectives `names` asks for, on the unlabelled target pool."""
    if not names:
        return []
    strategy, pool = config.strategy, tuple(target_pool(layout)["text"])
    made = {"target_mlm": lambda: MaskedLMObjective(pool, strategy.mlm_weight, strategy.mlm_probability,
                                                    strategy.mlm_head_warmup_steps),
            "domain_adversarial": lambda: AdversarialObjective(pool, strategy.adversarial_weight)}
    return [made[name]() for name in names]


def summarise(role: ModelRole, result: TrainResult, strategies: list[str] | None = None) -> TrainSummary:
    return TrainSummary(role, str(result.model_dir), result.history, result.best_epoch, result.stopped_early,
                        result.n_train, result.resumed_from_epoch, strategies or [],
                        bool(result.extra.get("reused")))


def _written(layout: Layout, summary: TrainSummary) -> TrainSummary:
    write_json(layout.history(summary.role), summary.to_dict())
    return summary
