"""Per-token activation scales for int8: the fused attention taken apart answers as before in fp32, every int8
MatMul input gets one scale per token, a text's int8 answers no longer depend on the texts beside it, and per-token
int8 is closer to fp32 than one scale per call."""

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
from tasks.token_scales import per_token_scales, unfuse_attention

TEXTS = ["great kettle", "broke in a week", "the lid does not seal and the handle got hot", "ok", "five stars"]
BESIDE = ["the handle snapped off after two days of use and the seller never answered a single one of my emails"]
CPU = torch.device("cpu")


def fp32_graph(model_dir, cache_dir):
    return load_for_inference(model_dir, None, "onnx", cache_dir, CPU).path


def logits(graph_or_path, model_dir, texts=TEXTS) -> np.ndarray:
    tokenizer = load_tokenizer(str(model_dir))
    batch = pad_batch(tokenize(tokenizer, texts, 48), pad_id_of(tokenizer))
    graph = graph_or_path if isinstance(graph_or_path, onnx.ModelProto) else onnx.load(str(graph_or_path))
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {name: tensor.numpy() for name, tensor in batch.items()})[0]


def int8(model_dir, tmp_path, per_token: bool):
    path = tmp_path / f"per-token-{per_token}.int8.onnx"
    settings = dataclasses.replace(INT8, per_token=per_token)
    quantise(fp32_graph(model_dir, tmp_path), path, settings, tokenizer=load_tokenizer(str(model_dir)))
    return path


def test_the_fused_attention_taken_apart_gives_the_same_fp32_answers(classifier_dir, tmp_path):
    path = fp32_graph(classifier_dir, tmp_path)
    graph = onnx.load(str(path))
    layers = load_classifier_dir(str(classifier_dir)).base_model.config.num_hidden_layers
    assert unfuse_attention(graph) == layers
    kinds = [node.op_type for node in graph.graph.node]
    assert "Attention" not in kinds and kinds.count("MultiHeadAttention") == layers
    onnx.checker.check_model(graph)
    assert np.abs(logits(graph, classifier_dir) - logits(path, classifier_dir)).max() < 1e-5


@pytest.mark.parametrize("head", ["classifier_dir", "mean_classifier_dir"])  # [CLS] pooler, mean of the tokens
def test_every_weight_matmuls_input_is_quantised_per_token(head, request, tmp_path):
    model_dir = request.getfixturevalue(head)
    fp32 = onnx.load(str(fp32_graph(model_dir, tmp_path)))
    weights = {initializer.name for initializer in fp32.graph.initializer}
    projections = sum(1 for node in fp32.graph.node if node.op_type in ("MatMul", "Gemm") and weights & set(node.input))
    projections += sum(1 for node in fp32.graph.node if node.op_type == "Attention")  # its QKV projection
    graph = onnx.load(str(load_for_inference(model_dir, None, "onnx-int8", tmp_path, CPU).path))
    kinds = [node.op_type for node in graph.graph.node]
    assert kinds.count("MatMulIntegerToFloat") == projections
    assert {"DynamicQuantizeLinear", "MatMulInteger", "QAttention", "MatMul", "Gemm"}.isdisjoint(kinds), kinds


def test_a_texts_int8_answers_do_not_depend_on_the_texts_beside_it(classifier_dir, tmp_path):
    changes = {}
    for per_token in (False, True):
        path = int8(classifier_dir, tmp_path, per_token)
        alone = np.concatenate([logits(path, classifier_dir, [text]) for text in TEXTS])
        beside = logits(path, classifier_dir, TEXTS + BESIDE)[: len(TEXTS)]
        changes[per_token] = float(np.abs(alone - beside).max())
    assert changes[True] < 1e-6 and changes[False] > 5e-5, changes  # one scale per call: the neighbours count


def one_matmul(path, weight: np.ndarray, opset: int = 17) -> None:
    """A graph of one projection, x [texts, tokens, channels] -> x @ weight, written to `path`."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "weight"], ["y"], name="projection/MatMul")], "one-matmul",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["texts", "tokens", weight.shape[0]])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(weight, "weight")])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)]), str(path))


def test_one_loud_token_no_longer_coarsens_the_other_tokens(tmp_path):
    generator = np.random.default_rng(0)
    weight = generator.normal(size=(64, 16)).astype(np.float32)
    x = generator.normal(size=(2, 8, 64)).astype(np.float32)
    x[1, 3] *= 100  # one token 100 times louder than the rest, as [SEP] or punctuation in BERT
    one_matmul(tmp_path / "fp32.onnx", weight)
    quiet = np.ones(x.shape[:2], dtype=bool)
    quiet[1, 3] = False
    errors = {}
    for per_token in (False, True):
        path = tmp_path / f"per-token-{per_token}.int8.onnx"
        quantise(tmp_path / "fp32.onnx", path, dataclasses.replace(INT8, split_outliers=0.0, per_token=per_token))
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        errors[per_token] = float(np.abs(session.run(["y"], {"x": x})[0] - x @ weight)[quiet].mean())
    assert errors[True] < errors[False] / 20, errors  # per call: the quiet tokens get a hundredth of the levels


@pytest.mark.parametrize("opset", [17, 18])  # ReduceMax's axes: an attribute up to 17, an input from 18
def test_a_silent_token_gets_zeros_not_nan_in_either_opset(opset, tmp_path):
    generator = np.random.default_rng(1)
    weight = generator.normal(size=(32, 8)).astype(np.float32)
    x = generator.normal(size=(1, 4, 32)).astype(np.float32)
    x[0, 2] = 0.0  # a token whose activations are all zero: its scale must not be 0
    one_matmul(tmp_path / "fp32.onnx", weight, opset)
    quantise(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", dataclasses.replace(INT8, split_outliers=0.0))
    y = onnxruntime.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"]).run(
        ["y"], {"x": x})[0]
    assert np.array_equal(y[0, 2], np.zeros(8, np.float32))
    assert np.abs(y - x @ weight).max() < 0.1  # the other tokens: int8 close to the product


def test_an_input_that_is_not_only_read_by_matmuls_keeps_its_scale_per_call(classifier_dir, tmp_path):
    path = int8(classifier_dir, tmp_path, per_token=False)  # the fused QAttention quantises its input per call
    graph = onnx.load(str(path))
    before = sum(1 for node in graph.graph.node if node.op_type == "QAttention")
    per_token_scales(graph)
    kinds = [node.op_type for node in graph.graph.node]
    assert before > 0 and kinds.count("QAttention") == before
    assert kinds.count("DynamicQuantizeLinear") == before  # each QAttention's input, and nothing else
    assert np.isfinite(logits(graph, classifier_dir)).all()


def test_the_int8_export_has_no_initializer_that_no_node_reads(classifier_dir, tmp_path):
    # ONNX Runtime warns of each such initializer whenever the model loads: in `predict`, the evaluation, the server
    graph = onnx.load(str(load_for_inference(classifier_dir, None, "onnx-int8", tmp_path, CPU).path))
    read = {name for node in graph.graph.node for name in node.input}
    assert [initializer.name for initializer in graph.graph.initializer if initializer.name not in read] == []
