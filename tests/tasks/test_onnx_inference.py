"""Inference through ONNX Runtime: the export answers as the torch model does, int8 nearly so and smaller, each
model is exported once, bad input stays bounded, and the backend that `auto` picks follows the CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tasks.errors import ModelError
from tasks.inference import predict, predict_probabilities
from tasks.models import load_classifier_dir, load_tokenizer
from tasks.onnx_inference import INT8_BATCH, OnnxClassifier, load_for_inference, resolve_backend

TEXTS = ["great kettle", "broke in a week", "the lid does not seal and the handle got hot", "ok"]
CPU = torch.device("cpu")


def torch_probabilities(model_dir, texts):
    return predict_probabilities(load_classifier_dir(str(model_dir)), load_tokenizer(str(model_dir)), texts, 48)


@pytest.mark.parametrize("head", ["classifier_dir", "mean_classifier_dir"])  # [CLS] pooler, mean of the tokens
def test_the_fp32_export_gives_the_torch_models_probabilities(head, request, tmp_path):
    classifier_dir = request.getfixturevalue(head)
    model = load_for_inference(classifier_dir, ("negative", "positive"), "onnx", tmp_path, CPU)
    assert isinstance(model, OnnxClassifier) and model.path.name == "model.onnx"
    onnx = predict_probabilities(model, load_tokenizer(str(classifier_dir)), TEXTS, 48)
    assert np.abs(onnx - torch_probabilities(classifier_dir, TEXTS)).max() < 1e-5


def test_int8_is_a_quarter_of_the_size_and_close_to_the_torch_model(classifier_dir, tmp_path):
    model = load_for_inference(classifier_dir, None, "onnx-int8", tmp_path, CPU, recheck_margin=0)  # int8 alone
    assert model.path.name == "model.int8.onnx"
    assert model.path.stat().st_size < model.path.with_name("model.onnx").stat().st_size / 2
    predicted = predict(model, load_tokenizer(str(classifier_dir)), TEXTS, 48)
    assert predicted.probabilities.shape == (4, 2) and set(predicted.labels) <= {"negative", "positive"}
    assert np.abs(predicted.probabilities - torch_probabilities(classifier_dir, TEXTS)).max() < 0.05


def test_each_model_is_exported_once_and_a_retrained_one_again(classifier_dir, tmp_path):
    first = load_for_inference(classifier_dir, None, "onnx-int8", tmp_path, CPU).path
    written = first.stat().st_mtime_ns
    assert load_for_inference(classifier_dir, None, "onnx-int8", tmp_path, CPU).path == first
    assert first.stat().st_mtime_ns == written
    assert sorted(path.name for path in first.parent.iterdir()) == ["model.int8.onnx", "model.onnx"]  # no temp left
    changed = tmp_path / "retrained"
    model = load_classifier_dir(str(classifier_dir))
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    model.save_pretrained(changed)
    load_tokenizer(str(classifier_dir)).save_pretrained(changed)
    assert load_for_inference(changed, None, "onnx-int8", tmp_path, CPU).path != first


def test_empty_and_ten_times_max_length_texts_are_labelled_within_max_length(classifier_dir, tmp_path):
    model = load_for_inference(classifier_dir, None, "onnx-int8", tmp_path, CPU)
    seen = []
    original = model.session.run
    model.session.run = lambda names, feed: seen.append(feed["input_ids"].shape) or original(names, feed)
    predicted = predict(model, load_tokenizer(str(classifier_dir)), ["", "word " * 480], 48)
    assert len(predicted.labels) == 2 and max(width for _, width in seen) <= 48


def test_int8_labels_a_batch_in_runs_of_int8_batch_texts_each_padded_only_to_its_own_longest(
        classifier_dir, tmp_path):
    model = load_for_inference(classifier_dir, None, "onnx-int8", tmp_path, CPU, recheck_margin=0)
    tokenizer = load_tokenizer(str(classifier_dir))
    masks = []
    original = model.session.run
    model.session.run = lambda names, feed: masks.append(feed["attention_mask"]) or original(names, feed)
    texts = [" ".join(["word"] * n) for n in range(40, 0, -1)]  # 40 lengths in one evaluation batch of 64
    assert INT8_BATCH == 16
    split = predict_probabilities(model, tokenizer, texts, 48, batch_size=64)
    assert [len(mask) for mask in masks] == [16, 16, 8]
    # longest first, each run as wide as its own longest text ([CLS] + n words + [SEP]), not the batch's 42
    assert [mask.shape[1] for mask in masks] == [42, 26, 10]
    whole = OnnxClassifier(model.path, model.config)  # each batch in one call, as the fp32 graph runs
    assert np.allclose(split, predict_probabilities(whole, tokenizer, texts, 48, batch_size=16), rtol=0, atol=1e-6)


def test_close_calls_are_labelled_again_by_the_fp32_graph_and_the_rest_keep_int8s_answer(classifier_dir, tmp_path):
    # the fixture's head is random and near 50/50 on every text; a seeded head 20x larger spreads the answers, so
    # that int8's error shows clearly beside fp32's
    confident = tmp_path / "confident"
    classifier = load_classifier_dir(str(classifier_dir))
    with torch.no_grad():
        head = torch.randn(classifier.classifier.weight.shape, generator=torch.Generator().manual_seed(0))
        classifier.classifier.weight.copy_(20 * head)
    classifier.save_pretrained(confident)
    tokenizer = load_tokenizer(str(classifier_dir))
    tokenizer.save_pretrained(confident)
    texts = [" ".join(["fine", "broken", "lid", "pan", "hot"][i % 5:] * (1 + i % 4)) for i in range(40)]
    int8 = predict_probabilities(load_for_inference(confident, None, "onnx-int8", tmp_path, CPU, recheck_margin=0),
                                 tokenizer, texts, 48)
    fp32 = predict_probabilities(load_for_inference(confident, None, "onnx", tmp_path, CPU), tokenizer, texts, 48)
    gaps = np.abs(int8[:, 1] - int8[:, 0])
    margin = float(np.median(gaps))  # half the texts are close calls
    close = gaps < margin
    assert 0 < close.sum() < len(texts)
    assert np.abs(int8[close] - fp32[close]).max(axis=1).min() > 1e-5  # int8 and fp32 differ on every close call
    model = load_for_inference(confident, None, "onnx-int8", tmp_path, CPU, recheck_margin=margin)
    rechecked = predict_probabilities(model, tokenizer, texts, 48)
    assert model.rechecked == close.sum()
    assert np.allclose(rechecked[close], fp32[close], rtol=0, atol=1e-6)
    assert np.array_equal(rechecked[~close], int8[~close])


def test_without_a_recheck_margin_int8_loads_no_fp32_graph(classifier_dir, tmp_path):
    assert load_for_inference(classifier_dir, None, "onnx-int8", tmp_path, CPU, recheck_margin=0).recheck is None
    model = load_for_inference(classifier_dir, None, "onnx-int8", tmp_path, CPU)  # the default margin, 0.10
    assert (model.margin, model.recheck.path.name, model.recheck.texts_per_run) == (0.10, "model.onnx", None)


def test_the_top_two_gap_is_the_likeliest_labels_probability_less_the_runner_ups_for_any_number_of_labels():
    from tasks.onnx_inference import top_two_gap
    from tasks.serving import top_two_gap as served_gap

    logits = np.log(np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.34, 0.33, 0.33]], dtype=np.float32))
    assert np.allclose(top_two_gap(logits), [0.2, 0.3, 0.01], atol=1e-6)
    assert np.allclose(top_two_gap(np.log(np.array([[0.45, 0.55]]))), [0.1])
    assert top_two_gap(np.zeros((2, 1), dtype=np.float32)).tolist() == [1.0, 1.0]  # one label: never a close call
    random = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    probabilities = np.exp(random) / np.exp(random).sum(axis=1, keepdims=True)
    assert np.allclose(served_gap(probabilities), top_two_gap(random), atol=1e-6)  # the served model's copy agrees


def test_a_model_trained_on_other_labels_or_without_a_head_is_refused(classifier_dir, tiny_model_dir, tmp_path):
    with pytest.raises(ModelError, match=r"was trained on labels \['negative', 'positive'\] but the data has"):
        load_for_inference(classifier_dir, ("bad", "good"), "onnx-int8", tmp_path, CPU)
    with pytest.raises(ModelError, match="is not a fine-tuned classifier"):
        load_for_inference(tiny_model_dir, None, "onnx-int8", tmp_path, CPU)
    assert not list(tmp_path.iterdir())  # nothing exported for a refused model


@pytest.mark.parametrize(("setting", "device", "precision", "expected"), [
    ("auto", "cpu", "fp32", "onnx-int8"), ("auto", "cpu", "bf16", "torch"), ("auto", "cuda", "bf16", "torch"),
    ("auto", "cuda", "fp32", "torch"), ("onnx", "cpu", "bf16", "onnx"), ("torch", "cpu", "fp32", "torch")])
def test_auto_is_int8_only_on_a_cpu_without_native_bf16(setting, device, precision, expected):
    assert resolve_backend(setting, torch.device(device), precision) == expected


def test_the_export_keeps_the_label_mapping(classifier_dir, tmp_path):
    model = load_for_inference(classifier_dir, None, "onnx", tmp_path, CPU)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert json.loads((classifier_dir / "config.json").read_text())["id2label"] == {"0": "negative", "1": "positive"}


@pytest.mark.parametrize("head", ["classifier_dir", "mean_classifier_dir"])
def test_a_bert_encoders_export_has_one_fused_attention_node_per_layer_and_no_masking_guards(head, request, tmp_path):
    import onnx

    classifier_dir = request.getfixturevalue(head)
    graph = onnx.load(str(load_for_inference(classifier_dir, None, "onnx", tmp_path, CPU).path)).graph
    kinds = [node.op_type for node in graph.node]
    layers = load_classifier_dir(str(classifier_dir)).base_model.config.num_hidden_layers
    assert kinds.count("Attention") == layers and kinds.count("Softmax") == 0  # the scores are inside the fused node
    assert "IsNaN" not in kinds  # the sdpa kernel's guard against fully masked rows, traced into every layer
