"""The Prefect flow end to end on the embedded data with a tiny model, and the stages DVC runs one by one."""

from __future__ import annotations

import json

import pytest

from flows import stages
from tasks.errors import ConfigError, DataError


def test_the_flow_trains_adapted_and_baseline_and_reports_target_metrics(prefect_harness, tiny_config):
    from prefect.artifacts import Artifact

    from flows.adaptation import adaptation_flow

    summary = adaptation_flow(tiny_config)
    assert summary["branch"] == "joint_training"
    assert "no domain-shift measure is implemented yet" in summary["decision"]["rationale"]
    assert summary["validation"] == "passed"
    for key in ("metrics", "baseline_metrics"):
        assert summary[key]["n"] == 60
        assert 0.0 <= summary[key]["accuracy"] <= 1.0
        assert set(summary[key]["per_class"]) == {"negative", "positive"}
    assert summary["gain"]["accuracy"] == pytest.approx(
        summary["metrics"]["accuracy"] - summary["baseline_metrics"]["accuracy"])
    reports = tiny_config.output.dir / "reports"
    for name in ("metrics.json", "predictions.csv", "confusion_matrix_adapted.png", "confusion_matrix_baseline.png",
                 "training_curves.png"):
        assert (reports / name).stat().st_size > 0
    assert summary["metrics"]["source"]["n"] == 40  # the source hold-out is scored too
    artifact = Artifact.get("adaptflow-report")
    assert artifact is not None and "class A,B,C,E,F taken" in artifact.data
    validation = Artifact.get("adaptflow-validation")
    assert validation is not None and "| target_test |" in validation.data


def test_stages_run_alone_in_order_as_dvc_runs_them(tiny_config):
    tiny_config.evaluation.baseline = False
    counts = stages.validate(tiny_config)["counts"]
    assert counts["target_test"] == 60 and counts["source_test"] == 40
    assert stages.similarity(tiny_config).branch == "joint_training"
    joint = stages.prepare(tiny_config)
    assert joint == counts["source_train"] + counts["target_labeled"]
    stages.train(tiny_config, "adapted", progress=False)
    report = stages.evaluate(tiny_config)
    assert report["baseline_metrics"] is None
    saved = json.loads((tiny_config.output.dir / "reports" / "metrics.json").read_text())
    assert saved["metrics"]["accuracy"] == report["metrics"]["accuracy"]


def test_a_stage_without_its_inputs_says_which_stage_to_run(tiny_config):
    with pytest.raises(DataError, match="run the validate stage first"):
        stages.train(tiny_config, "adapted")


def test_the_shift_branch_is_refused_until_it_exists(tiny_config):
    tiny_config.strategy.branch = "shift_adaptation"
    stages.validate(tiny_config)
    stages.similarity(tiny_config)
    with pytest.raises(ConfigError, match="shift_adaptation is not available yet"):
        stages.prepare(tiny_config)
