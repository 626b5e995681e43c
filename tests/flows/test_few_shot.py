"""The few-shot branch: chosen by name and said so, trained on the labelled target texts alone, its encoder tuned
contrastively first (and reused while its inputs hold), the result a mean-pooled classifier that evaluates as any."""

from __future__ import annotations

import json

from flows.layout import layout_of, read_parquet, read_role
from flows.stage_registry import run_stage
from tasks.config import StrategyConfig
from tasks.mean_pooling import MeanPooledForSequenceClassification
from tasks.models import load_classifier_dir


def _few_shot(tiny_config):
    strategy = StrategyConfig(branch="few_shot", few_shot_learning_rate=1e-3)
    return tiny_config.model_copy(update={"strategy": strategy})


def test_the_few_shot_branch_trains_on_the_labelled_target_texts_alone_from_a_contrastively_tuned_encoder(
        tiny_config):
    config = _few_shot(tiny_config)
    for stage in ("validate", "similarity"):
        decision = run_stage(config, stage)
    assert decision.branch == "few_shot" and decision.forced
    assert "few-shot path ran on the labelled target texts alone" in decision.rationale
    prepared = run_stage(config, "prepare")
    layout = layout_of(config)
    training_set = read_parquet(layout.training_set)
    labelled = [*read_role(layout, "target_labeled")["text"], *read_role(layout, "target_validation")["text"]]
    assert sorted(training_set["text"]) == sorted(labelled)
    assert set(training_set["domain"]) == {"target"} and prepared.branch == "few_shot"

    summary = run_stage(config, "train")
    assert summary.strategies[0].startswith(f"contrastive_tuning (setfit: {len(labelled)} labelled target texts")
    assert summary.strategies[1].startswith("pseudo_labeling (")  # its unlabelled target texts, self-trained on
    assert summary.strategies[1].endswith("second round continues from the first model on the target texts)")
    assert isinstance(load_classifier_dir(summary.model_dir), MeanPooledForSequenceClassification)
    assert all(row["val_accuracy"] is None for row in summary.history)  # its validation texts are training texts
    encoders = list((layout.checkpoints / "few-shot").iterdir())
    assert len(encoders) == 1

    run_stage(config, "train-baseline")  # the source-only baseline it is compared with
    report = run_stage(config, "evaluate")
    assert report.metrics["n"] == 60 and report.baseline_metrics is not None
    assert json.loads(layout.similarity.read_text())["branch"] == "few_shot"


def test_a_second_run_with_the_same_labelled_texts_reuses_the_tuned_encoder(tiny_config):
    config = _few_shot(tiny_config)
    for stage in ("validate", "similarity", "prepare", "train"):
        run_stage(config, stage)
    layout = layout_of(config)
    (encoder,) = (layout.checkpoints / "few-shot").iterdir()
    stamp = (encoder / "model.safetensors").stat().st_mtime_ns
    config.train.resume = False
    again = run_stage(config, "train")
    assert again.strategies[0].endswith("; reused), probe head")
    assert (encoder / "model.safetensors").stat().st_mtime_ns == stamp


def test_without_a_source_domain_the_flow_takes_the_few_shot_path_by_itself_and_trains_no_baseline(
        prefect_harness, tiny_config):
    from flows.adaptation import adaptation_flow

    config = tiny_config.model_copy(update={"strategy": StrategyConfig(few_shot_learning_rate=1e-3,
                                                                       few_shot_pseudo_labeling=False)})
    config.data.source = None
    assert config.strategy.branch == "auto"
    summary = adaptation_flow(config)
    assert summary["branch"] == "few_shot" and summary["decision"]["forced"] is False
    assert summary["decision"]["rationale"].startswith("data.source is null")
    assert summary["baseline_metrics"] is None and summary["metrics"]["n"] == 60
    layout = layout_of(config)
    assert not layout.model("baseline").exists()
    validated = json.loads(layout.validation.read_text())
    assert "source_train" not in validated["roles"] and validated["status"] == "passed"
    assert layout.domains_plot.is_file()  # the target domain alone


def test_the_flow_runs_the_few_shot_path_when_asked_and_its_report_marks_that_path(prefect_harness, tiny_config):
    from prefect.artifacts import Artifact

    from flows.adaptation import adaptation_flow

    config = _few_shot(tiny_config)
    config.strategy.few_shot_pseudo_labeling = False  # one training round: fast
    summary = adaptation_flow(config)
    assert summary["branch"] == "few_shot" and summary["decision"]["forced"] is True
    assert summary["strategies"][0].startswith("few_shot (")
    assert summary["metrics"]["n"] == summary["baseline_metrics"]["n"] == 60
    artifact = Artifact.get("adaptflow-report")
    assert artifact is not None and "class A,B,G,E,F taken" in artifact.data
