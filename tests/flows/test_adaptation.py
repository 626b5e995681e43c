"""The Prefect flow end to end on the embedded data with a tiny model, and the stages DVC runs one by one."""

from __future__ import annotations

import json

import pytest

from flows.layout import layout_of, read_parquet
from flows.stage_registry import run_stage
from tasks.errors import DataError

# thresholds that make the `auto` decision go each way on electronics -> kitchen (measured, not forced)
SIMILAR = {"mmd2_max": 10.0, "proxy_a_distance_max": 2.0}  # every measured pair is within these
DISSIMILAR = {"mmd2_max": 0.0}  # two different samples always have MMD² > 0


@pytest.mark.parametrize(("thresholds", "branch", "path", "strategy"),
                         [(SIMILAR, "joint_training", "A,B,C,E,F", "joint_training"),
                          (DISSIMILAR, "shift_adaptation", "A,B,D,E,F", "class_balance")],
                         ids=["similar", "dissimilar"])
def test_the_flow_trains_adapted_and_baseline_and_reports_target_metrics(prefect_harness, tiny_config, thresholds,
                                                                        branch, path, strategy):
    import pandas as pd
    from prefect.artifacts import Artifact

    from flows.adaptation import adaptation_flow
    from tasks.evaluation import compute_metrics

    tiny_config.similarity = tiny_config.similarity.model_copy(update=thresholds)
    tiny_config.strategy.shift_strategies = ["class_balance", "augmentation"]  # no second round in either branch:
    tiny_config.strategy.joint_pseudo_labeling = False  # fast
    summary = adaptation_flow(tiny_config)
    assert summary["branch"] == branch and summary["decision"]["forced"] is False
    assert "MMD²" in summary["decision"]["rationale"] and summary["decision"]["measures"]["n_source"] > 0
    assert summary["strategies"][0].split(" ")[0] == strategy
    assert summary["validation"] == "passed"
    reports = tiny_config.output.dir / "reports"
    predictions = pd.read_csv(reports / "predictions.csv")
    assert predictions["split"].value_counts().to_dict() == {"target_test": 60, "source_test": 40}
    labels = ["negative", "positive"]
    for split, metrics in (("target_test", summary["metrics"]), ("source_test", summary["metrics"]["source"])):
        rows = predictions[predictions["split"] == split]
        scored = compute_metrics(rows["label"].tolist(), rows["predicted"].tolist(), labels)
        assert metrics["accuracy"] == pytest.approx(scored["accuracy"])  # the report is the predictions'
    for key in ("metrics", "baseline_metrics"):
        assert summary[key]["n"] == 60 and set(summary[key]["per_class"]) == set(labels)
    assert summary["gain"]["accuracy"] == pytest.approx(
        summary["metrics"]["accuracy"] - summary["baseline_metrics"]["accuracy"])
    for name in ("metrics.json", "predictions.csv", "confusion_matrix_adapted.png", "confusion_matrix_baseline.png",
                 "training_curves.png"):
        assert (reports / name).stat().st_size > 0
    assert summary["metrics"]["source"]["n"] == 40  # the source hold-out is scored too
    artifact = Artifact.get("adaptflow-report")
    assert artifact is not None and f"class {path} taken" in artifact.data
    assert (tiny_config.output.dir / "similarity" / "domains.png").stat().st_size > 0
    validation = Artifact.get("adaptflow-validation")
    assert validation is not None and "| target_test |" in validation.data


def test_stages_run_alone_in_order_as_dvc_runs_them(tiny_config):
    tiny_config.evaluation.baseline = False
    counts = run_stage(tiny_config, "validate").counts
    assert counts["target_test"] == 60 and counts["source_test"] == 40
    docs = tiny_config.output.dir / "validation" / "data_docs"  # one Data Docs site: a page per validated role
    assert {page.name for page in (docs / "expectations").glob("*.html")} == {
        f"{role}.html" for role in counts if counts[role]}
    assert len(list((docs / "validations").rglob("*.html"))) == sum(1 for role in counts if counts[role])
    tiny_config.strategy.branch = "joint_training"
    assert run_stage(tiny_config, "similarity").branch == "joint_training"
    joint = run_stage(tiny_config, "prepare")
    assert joint.rows == counts["source_train"] + counts["target_labeled"]
    run_stage(tiny_config, "train")
    report = run_stage(tiny_config, "evaluate")
    assert report.baseline_metrics is None
    saved = json.loads((tiny_config.output.dir / "reports" / "metrics.json").read_text())
    assert saved["metrics"]["accuracy"] == report.metrics["accuracy"]


def test_a_stage_without_its_inputs_says_which_stage_to_run(tiny_config):
    with pytest.raises(DataError, match="run the validate stage first"):
        run_stage(tiny_config, "train")


def test_the_shift_branch_reweights_the_source_and_augments_the_target(tiny_config):
    tiny_config.strategy.branch = "shift_adaptation"
    tiny_config.strategy.shift_strategies = ["vocabulary_substitution", "importance_weighting", "class_balance",
                                             "augmentation"]
    counts = run_stage(tiny_config, "validate").counts
    assert run_stage(tiny_config, "similarity").forced
    prepared = run_stage(tiny_config, "prepare")
    names = [name.split(" ")[0] for name in prepared.strategies]
    assert [name for name in names if name != "vocabulary_substitution"] == ["importance_weighting",
                                                                            "class_balance", "augmentation"]
    assert prepared.substitutions is not None  # the word mapping is recorded, even when no pair was close enough
    assert prepared.rows == counts["source_train"] + 3 * counts["target_labeled"]
    frame = read_parquet(layout_of(tiny_config).training_set)
    assert frame.loc[frame.domain == "source", "weight"].std() > 0


def test_a_validation_error_fails_the_flow_before_any_model_and_writes_nothing_downstream(prefect_harness, tiny_config,
                                                                                       tmp_path):
    from prefect.artifacts import Artifact

    from flows.adaptation import adaptation_flow
    from tasks.errors import ValidationFailed
    from tests.conftest import SAMPLE

    kitchen = SAMPLE / "kitchen.csv"
    tiny_config.data = tiny_config.data.model_copy(update={"source": kitchen, "target": None, "target_test": kitchen})
    state = adaptation_flow(tiny_config, return_state=True)
    assert state.is_failed()
    with pytest.raises(ValidationFailed, match=r"data validation failed: ERROR .*kitchen.csv \[target_test\] "
                                               r"leakage .*found 400 rows"):
        state.result()
    outputs = tiny_config.output.dir
    assert (outputs / "validation" / "summary.json").is_file()
    assert not (outputs / "data").exists() and not (outputs / "models").exists()
    assert "leakage" in Artifact.get("adaptflow-validation").data
