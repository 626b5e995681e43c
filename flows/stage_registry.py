"""The stage registry: every fact about a stage declared once — its name, the function `adaptflow stage NAME`
runs, the config keys it reads, its upstream stages, its outputs, metrics and plots, and the Prefect tasks it is
made of. The flow, the CLI, tracking, the cache keys and the generated dvc.yaml all read it; its code dependencies
are computed from the stage module's imports (`flows.code_deps`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.code_deps import source_files
from flows.layout import Layout, layout_of, read_json
from flows.stages import evaluate, prepare, register, similarity, train, validate
from tasks.branching import Decision
from tasks.config import AdaptflowConfig
from tasks.results import EvaluationReport, PreparedSet, Registration, TrainSummary, ValidationSummary

WHOLE_CONFIG = "*"  # a stage that reads every key (the register stage logs them all as MLflow params)
PathOf = Callable[[Layout], Path]


@dataclass(frozen=True)
class Step:
    """One Prefect task of a stage: its name in the UI and the function it runs."""

    task: str
    fn: Callable[..., Any]
    io_retries: bool = False  # retried on I/O hiccups (never on bad data or config)
    cached: bool = True


@dataclass(frozen=True)
class Stage:
    """One pipeline stage. `run(config, *results of upstream, in order)` is what `adaptflow stage NAME` calls."""

    name: str
    run: Callable[..., Any]
    params: tuple[str, ...]
    upstream: tuple[str, ...]
    result: type
    result_file: PathOf
    steps: tuple[Step, ...]
    outs: tuple[PathOf, ...] = ()
    docs: tuple[PathOf, ...] = ()  # outputs for people (Data Docs): tracked by DVC, read by no later stage
    metrics: tuple[PathOf, ...] = ()
    plots: tuple[PathOf, ...] = ()
    plots_of: tuple[tuple[str, PathOf], ...] = ()  # plots of an upstream stage's model, made when that stage runs
    track: str | None = None  # the RunTracker method that logs this stage's result
    enabled: Callable[[AdaptflowConfig], bool] = lambda config: True
    reads_data_files: bool = False

    @property
    def module(self) -> str:
        return self.run.__module__

    def code(self) -> tuple[str, ...]:
        """The source files the stage runs (its module and everything it imports in this project)."""
        return source_files(self.module)

    def load(self, layout: Layout) -> Any:
        """This stage's result as it wrote it (for a stage run alone, as `dvc repro` runs it)."""
        return self.result.from_dict(read_json(self.result_file(layout)))


STAGES: tuple[Stage, ...] = (
    Stage("validate", validate.validate, ("data", "split", "validation", "model"), (), ValidationSummary,
          lambda at: at.validation, (Step("validate-data", validate.validate, io_retries=True),),
          outs=(lambda at: at.data,), docs=(lambda at: at.data_docs,), track="log_validation", reads_data_files=True),
    Stage("similarity", similarity.similarity,
          ("similarity", "strategy.branch", "model.name_or_path", "train.device", "train.precision"), ("validate",),
          Decision, lambda at: at.similarity, (Step("check-similarity", similarity.similarity, io_retries=True),),
          plots=(lambda at: at.domains_plot,), track="log_similarity"),
    Stage("prepare", prepare.prepare,
          ("strategy", "similarity", "split.seed", "model.name_or_path", "train.device", "train.precision"),
          ("validate", "similarity"), PreparedSet, lambda at: at.prepared,
          (Step("joint-training", prepare.joint_training), Step("shift-adaptation", prepare.shift_adaptation),
           Step("few-shot", prepare.few_shot)),
          outs=(lambda at: at.training_set,), track="log_prepared"),
    Stage("train-baseline", train.fine_tune_baseline, ("model", "train"), ("validate",), TrainSummary,
          lambda at: at.history("baseline"), (Step("fine-tune-baseline", train.fine_tune_baseline),),
          outs=(lambda at: at.model("baseline"),), track="log_training",
          enabled=lambda config: config.evaluation.baseline and config.data.has_source),
    Stage("train", train.train, ("model", "train", "strategy", "evaluation.batch_size"), ("validate", "prepare"),
          TrainSummary, lambda at: at.history("adapted"),
          (Step("fine-tune-adapted", train.fine_tune_adapted), Step("pseudo-label", train.pseudo_label),
           Step("fine-tune-round-2", train.fine_tune_round_2)),
          outs=(lambda at: at.model("adapted"), lambda at: at.pseudo_labels),
          metrics=(lambda at: at.pseudo_label_summary,), track="log_training"),
    Stage("evaluate", evaluate.evaluate, ("evaluation", "inference", "model.max_length", "train.device",
                                          "train.precision"),
          ("validate", "train", "train-baseline"), EvaluationReport, lambda at: at.metrics,
          (Step("evaluate-target", evaluate.evaluate),),
          outs=(lambda at: at.predictions,),
          plots=(lambda at: at.reports / "confusion_matrix_adapted.png", lambda at: at.reports / "training_curves.png"),
          plots_of=(("train-baseline", lambda at: at.reports / "confusion_matrix_baseline.png"),),
          track="log_evaluation"),
    Stage("register", register.register, (WHOLE_CONFIG,),
          ("validate", "similarity", "prepare", "train-baseline", "train", "evaluate"), Registration,
          lambda at: at.registration, (Step("register-model", register.register_model, cached=False),)),
)
BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
STAGE_NAMES: tuple[str, ...] = tuple(BY_NAME)
BY_RUN: dict[Callable[..., Any], Stage] = {stage.run: stage for stage in STAGES}
STEP_STAGE: dict[Callable[..., Any], tuple[Stage, Step]] = {
    step.fn: (stage, step) for stage in STAGES for step in stage.steps}


def stage_of(fn: Callable[..., Any]) -> tuple[Stage, Step]:
    """The stage and step a stage function belongs to."""
    return STEP_STAGE[fn]


def upstream_closure(name: str) -> tuple[str, ...]:
    """`name` and every stage upstream of it, in pipeline order."""
    wanted = {name}
    for stage in reversed(STAGES):
        if stage.name in wanted:
            wanted.update(stage.upstream)
    return tuple(stage.name for stage in STAGES if stage.name in wanted)


def upstream_results(config: AdaptflowConfig, name: str) -> list[Any]:
    """The results `BY_NAME[name].run` takes, read from the files the upstream stages wrote (None for a stage the
    config turns off)."""
    layout = layout_of(config)
    return [BY_NAME[up].load(layout) if BY_NAME[up].enabled(config) else None for up in BY_NAME[name].upstream]


def run_stage(config: AdaptflowConfig, name: str) -> Any:
    """What `adaptflow stage NAME` does: the stage function on its upstream stages' recorded results."""
    return BY_NAME[name].run(config, *upstream_results(config, name))


def producer_of(path: Path) -> str | None:
    """The stage that writes `path`, under any output directory (for 'run the X stage first' messages)."""
    for root in list(path.parents)[:4]:
        layout = Layout(root)
        for stage in STAGES:
            written = [stage.result_file(layout), *(out(layout) for out in stage.outs + stage.metrics)]
            if path in written or any(out in path.parents for out in written):
                return stage.name
    return None


def track_result(tracker: Any, config: AdaptflowConfig, name: str, result: Any,
                 results: dict[str, Any]) -> None:
    """Log one stage's result with its tracker method; the evaluation also gets the run report (`results`: the
    earlier stages' results by stage name)."""
    stage = BY_NAME[name]
    if stage.track is None or result is None:
        return
    layout = layout_of(config)
    if stage.track == "log_evaluation":
        from tasks.report import run_markdown, summarise_run

        found = {type(value): value for value in results.values() if not isinstance(value, TrainSummary)}
        adapted = next(value for value in results.values()
                       if isinstance(value, TrainSummary) and value.role == "adapted")
        summary = summarise_run(found[ValidationSummary], found[Decision], found[PreparedSet], adapted, result)
        tracker.log_evaluation(layout, result, run_markdown(summary))
    else:
        getattr(tracker, stage.track)(layout, result)


def track_results(tracker: Any, config: AdaptflowConfig, results: dict[str, Any]) -> None:
    """Log every stage's result in pipeline order (a stage that did not run has None)."""
    for name, result in results.items():
        track_result(tracker, config, name, result, results)
