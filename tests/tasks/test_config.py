"""The typed config: params.yaml is its serialised form; overrides and errors name the key."""

from __future__ import annotations

import pytest
import yaml

from tasks.config import AdaptflowConfig, apply_overrides, build_config, flatten_config, load_config
from tasks.errors import ConfigError
from tasks.write_params import params_text
from tests.conftest import REPO


def test_params_yaml_is_the_serialised_default_config():
    assert (REPO / "params.yaml").read_text(encoding="utf-8") == params_text()
    assert load_config(REPO / "params.yaml") == AdaptflowConfig()


def test_overrides_are_read_as_yaml_values():
    config = load_config(None, ["train.epochs=1", "strategy.target_weight=2.5", "data.text_columns=[text]",
                                "data.target_test=null", "split.seed=7"])
    assert config.train.epochs == 1
    assert config.strategy.target_weight == 2.5
    assert config.data.text_columns == ["text"]
    assert config.split.seed == 7


def test_unknown_key_names_the_key_and_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown key 'train.epoch'; valid keys in 'train': epochs, batch_size"):
        load_config(None, ["train.epoch=1"])


def test_unknown_section_names_the_valid_sections():
    with pytest.raises(ConfigError, match=r"unknown key 'trian'.*top level: data, split, validation, model"):
        load_config(None, ["trian.epochs=1"])


def test_bad_choice_lists_the_choices():
    with pytest.raises(ConfigError, match=r"strategy.branch: choose one of 'auto', 'joint_training', "
                                          r"'shift_adaptation' or 'few_shot' \(got 'fast'\)"):
        load_config(None, ["strategy.branch=fast"])


def test_bad_value_names_key_and_value():
    with pytest.raises(ConfigError, match=r"train.epochs: .*greater than or equal to 1 \(got 0\)"):
        load_config(None, ["train.epochs=0"])


def test_override_without_equals_is_a_usage_error():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(None, ["train.epochs"])


def test_params_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{bad}: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="params file not found"):
        load_config(tmp_path / "missing.yaml")


def test_a_target_is_required():
    with pytest.raises(ConfigError, match="set data.target"):
        build_config({"data": {"target": None}})


def test_a_branch_that_trains_on_the_source_needs_a_source():
    for branch in ("joint_training", "shift_adaptation"):
        with pytest.raises(ConfigError, match=f"^params: strategy.branch {branch} trains on the source domain but "
                                              "data.source is null; set data.source, or strategy.branch auto"):
            build_config({"data": {"source": None}, "strategy": {"branch": branch}})
    assert build_config({"data": {"source": None}}).data.source is None  # auto: the few-shot path


def test_overrides_do_not_mutate_the_input():
    raw = {"train": {"epochs": 3}}
    assert apply_overrides(raw, ["train.epochs=1"]) == {"train": {"epochs": 1}}
    assert raw == {"train": {"epochs": 3}}


def test_flattened_config_has_dotted_keys():
    flat = flatten_config(AdaptflowConfig())
    assert flat["train.epochs"] == 3
    assert flat["model.name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_the_flow_parameter_schema_is_the_config():
    from prefect.utilities.callables import parameter_schema

    from flows.adaptation import adaptation_flow

    schema = parameter_schema(adaptation_flow.fn)
    assert "config" in schema.properties
    assert yaml.safe_dump(schema.model_dump())  # serialisable, as the UI needs
    assert "TrainConfig" in schema.definitions
