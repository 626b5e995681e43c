"""The stage registry is the one declaration of the pipeline: dvc.yaml is generated from it, each stage's code
dependencies come from its imports, and the config keys a stage declares are the ones it really reads."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from flows import stage_registry as registry
from flows.dvc_pipeline import dvc_yaml_text
from tasks.config import load_config
from tests.conftest import REPO


def test_the_committed_dvc_yaml_is_the_one_the_registry_generates():
    committed = (REPO / "dvc.yaml").read_text(encoding="utf-8")
    assert committed == dvc_yaml_text(load_config(REPO / "params.yaml")), "run `adaptflow dvc-yaml` and commit it"


def test_a_stages_code_dependencies_are_what_its_module_imports():
    train = set(registry.BY_NAME["train"].code())
    assert {"flows/stages/train.py", "flows/self_training.py", "flows/layout.py", "tasks/training.py",
            "tasks/objectives/domain_adversarial.py", "tasks/objectives/masked_lm.py", "tasks/devices.py",
            "tasks/inference.py", "tasks/config/__init__.py"} <= train
    prepare = set(registry.BY_NAME["prepare"].code())
    assert {"flows/stages/prepare.py", "tasks/embeddings.py", "tasks/similarity.py", "tasks/vocabulary.py"} <= prepare
    assert "flows/stages/train.py" not in prepare and "tasks/training.py" not in prepare
    assert not any(path.startswith("flows/stages/") and path != "flows/stages/__init__.py"
                   and path != "flows/stages/validate.py" for path in registry.BY_NAME["validate"].code())


def test_dvc_yaml_names_the_configured_data_files_as_validate_dependencies(tmp_path):
    from flows.dvc_pipeline import pipeline

    own = tmp_path / "reviews.csv"
    config = load_config(REPO / "params.yaml", [f"data.source={own}", "evaluation.baseline=false"])
    stages = pipeline(config)["stages"]
    assert str(own) in stages["validate"]["deps"] and "data/sample/kitchen.csv" in stages["validate"]["deps"]
    assert "train-baseline" not in stages and "outputs/models/baseline" not in stages["evaluate"]["deps"]
    assert stages["register"]["params"] == [{"params.yaml": None}]  # it logs every param to MLflow


def test_without_a_source_dvc_yaml_has_no_baseline_stage_and_no_source_file(tmp_path):
    from flows.dvc_pipeline import pipeline

    config = load_config(REPO / "params.yaml", ["data.source=null"])
    stages = pipeline(config)["stages"]
    assert "train-baseline" not in stages and "outputs/models/baseline" not in stages["evaluate"]["deps"]
    assert not any("books.csv" in dep for dep in stages["validate"]["deps"])
    assert "data/sample/kitchen.csv" in stages["validate"]["deps"]


class Recorder:
    """The config as a stage sees it, recording every `section.key` read (a pydantic method reads the section)."""

    def __init__(self, model: BaseModel, prefix: str, seen: set[str]) -> None:
        self._model, self._prefix, self._seen = model, prefix, seen

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._model, name)
        key = f"{self._prefix}.{name}" if self._prefix else name
        if isinstance(value, BaseModel):
            return Recorder(value, key, self._seen)
        if name.startswith("model_"):
            self._seen.add(self._prefix or registry.WHOLE_CONFIG)
        elif not key.startswith("output."):  # where outputs go is not what they are
            self._seen.add(key)
        return value


def _covered(key: str, declared: set[str]) -> bool:
    return registry.WHOLE_CONFIG in declared or any(key == d or key.startswith(d + ".") for d in declared)


@pytest.mark.slow
def test_each_stage_reads_exactly_the_config_keys_the_registry_declares(tiny_config, mlflow_store):
    tiny_config.strategy.branch = "shift_adaptation"  # the branch whose stages read the most
    tiny_config.tracking.uri = mlflow_store
    reads: dict[str, set[str]] = {}
    for stage in registry.STAGES:
        upstream = registry.upstream_results(tiny_config, stage.name)
        seen: set[str] = set()
        stage.run(Recorder(tiny_config, "", seen), *upstream)
        reads[stage.name] = seen
    for stage in registry.STAGES:
        declared = set(stage.params)
        undeclared = sorted(key for key in reads[stage.name] if not _covered(key, declared))
        assert not undeclared, f"{stage.name} reads {undeclared} but does not declare them"
        unread = sorted(d for d in declared if d != registry.WHOLE_CONFIG
                        and not any(key == d or key.startswith(d + ".") or d.startswith(key + ".")
                                    for key in reads[stage.name]))
        assert not unread, f"{stage.name} declares {unread} but never reads them"
    assert registry.WHOLE_CONFIG in reads["register"]
