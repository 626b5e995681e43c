"""Outlier channel splitting before int8: a channel far above the others is fed as copies, the fp32 graph's answers do
not change, int8 gets closer to fp32, and a graph without such a channel is left as it is."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from tasks.batching import pad_batch, pad_id_of, tokenize
from tasks.models import load_classifier_dir, load_tokenizer
from tasks.onnx_inference import INT8, load_for_inference, quantise
from tasks.outlier_channels import MAX_COPIES, copies_per_channel, split_outlier_channels

TEXTS = ["great kettle", "broke in a week", "the lid does not seal and the handle got hot", "ok", "five stars"]
OUTLIER = 5  # the channel made 40 times larger in every layer's feed-forward input
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def outlier_dir(classifier_dir, tmp_path_factory):
    """The tiny classifier with channel OUTLIER of each feed-forward input (the attention block's LayerNorm output)
    40 times larger, as MiniLM's channel 99 is about 14 times its median channel."""
    model = load_classifier_dir(str(classifier_dir))
    with torch.no_grad():
        for layer in model.base_model.encoder.layer:
            norm = layer.attention.output.LayerNorm
            norm.weight[OUTLIER] *= 40
            norm.bias[OUTLIER] = norm.bias[OUTLIER] * 40 + 20
    directory = tmp_path_factory.mktemp("outlier-classifier")
    model.save_pretrained(directory)
    load_tokenizer(str(classifier_dir)).save_pretrained(directory)
    return directory


def fp32_graph(model_dir, cache_dir):
    return load_for_inference(model_dir, None, "onnx", cache_dir, CPU).path


def logits(graph_or_path, model_dir, output: str = "logits") -> np.ndarray:
    tokenizer = load_tokenizer(str(model_dir))
    batch = pad_batch(tokenize(tokenizer, TEXTS, 48), pad_id_of(tokenizer))
    graph = graph_or_path if isinstance(graph_or_path, onnx.ModelProto) else onnx.load(str(graph_or_path))
    if output != "logits":
        graph.graph.output.append(onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([output], {name: tensor.numpy() for name, tensor in batch.items()})[0]


def split_rows(graph) -> dict[str, list[int]]:
    """Per split MatMul, the input channels fed more than once."""
    weights = {initializer.name: onnx.numpy_helper.to_array(initializer) for initializer in graph.graph.initializer}
    return {node.name: sorted(set(weights[node.input[1]].tolist())) for node in graph.graph.node
            if node.op_type == "Gather" and node.name.endswith("outlier_split/Gather")}


def test_copies_bring_each_channel_within_threshold_times_the_median():
    assert copies_per_channel(np.array([1.0, 2.0, 1.0, 1.0, 20.0]), 5.0).tolist() == [1, 1, 1, 1, 4]
    assert copies_per_channel(np.array([1.0, 1.0, 1.0, 5.0]), 5.0).tolist() == [1, 1, 1, 1]  # at the limit: once
    assert copies_per_channel(np.zeros(4), 5.0).tolist() == [1, 1, 1, 1]  # a dead input: nothing to split
    assert copies_per_channel(np.array([1e-3, 1e-3, 1e-3, 100.0]), 8.0)[-1] == MAX_COPIES  # not 12,500 copies


def test_the_outlier_channel_is_fed_as_copies_in_every_layer_and_the_fp32_answers_stay(outlier_dir, tmp_path):
    path = fp32_graph(outlier_dir, tmp_path)
    graph = onnx.load(str(path))
    added = split_outlier_channels(graph, load_tokenizer(str(outlier_dir)), INT8.split_outliers)
    encoder = load_classifier_dir(str(outlier_dir)).base_model.config
    layers = encoder.num_hidden_layers
    assert split_rows(graph) == {f"/model/bert/encoder/layer.{i}/intermediate/dense/outlier_split/Gather": [OUTLIER]
                                 for i in range(layers)}
    intermediate = {node.input[1] for node in graph.graph.node if node.name.endswith("intermediate/dense/MatMul")}
    rows = sum(onnx.numpy_helper.to_array(i).shape[0] for i in graph.graph.initializer if i.name in intermediate)
    assert added >= 2 * layers and rows == encoder.hidden_size * layers + added  # each layer: its channels and copies
    onnx.checker.check_model(graph)
    assert np.abs(logits(graph, outlier_dir) - logits(path, outlier_dir)).max() < 1e-4


def test_a_graph_without_outlier_channels_is_left_as_it_is(classifier_dir, tmp_path):
    graph = onnx.load(str(fp32_graph(classifier_dir, tmp_path)))
    before = graph.SerializeToString()
    assert split_outlier_channels(graph, load_tokenizer(str(classifier_dir)), INT8.split_outliers) == 0
    assert graph.SerializeToString() == before


def test_splitting_brings_int8_closer_to_fp32_when_one_channel_dwarfs_the_rest(outlier_dir, tmp_path):
    path = fp32_graph(outlier_dir, tmp_path)
    first = "/model/bert/encoder/layer.0/intermediate/dense/MatMul_output_0"  # the first feed-forward projection
    reference = logits(path, outlier_dir, first)
    errors = {}
    for per_token in (False, True):  # one scale per call; per token, each token's scale still set by the outlier
        for threshold in (0.0, INT8.split_outliers):
            int8 = tmp_path / f"split-{threshold}-{per_token}.int8.onnx"
            settings = dataclasses.replace(INT8, split_outliers=threshold, per_token=per_token)
            quantise(path, int8, settings, tokenizer=load_tokenizer(str(outlier_dir)))
            errors[per_token, threshold] = float(np.abs(logits(int8, outlier_dir, first) - reference).mean())
    assert errors[False, INT8.split_outliers] < errors[False, 0.0] / 2, errors
    assert errors[True, INT8.split_outliers] < errors[True, 0.0] * 0.8, errors


def test_splitting_without_the_tokenizer_is_refused(outlier_dir, tmp_path):
    with pytest.raises(ValueError, match="needs the model's tokenizer"):
        quantise(fp32_graph(outlier_dir, tmp_path), tmp_path / "model.int8.onnx")


def test_the_int8_export_that_inference_loads_carries_the_split(outlier_dir, tmp_path):
    graph = onnx.load(str(load_for_inference(outlier_dir, None, "onnx-int8", tmp_path, CPU).path))
    layers = load_classifier_dir(str(outlier_dir)).base_model.config.num_hidden_layers
    assert sorted(node.name for node in graph.graph.node if node.name.endswith("outlier_split/Concat")) == [
        f"/model/bert/encoder/layer.{i}/intermediate/dense/outlier_split/Concat" for i in range(layers)]
    fp32 = [node.name for node in graph.graph.node if node.op_type == "MatMul" and "intermediate" in node.name]
    assert fp32 == []  # the split projection itself is int8
