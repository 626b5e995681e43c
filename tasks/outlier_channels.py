"""Outlier channel splitting before int8: one dynamic scale per tensor, with a few channels far larger than the rest.

ONNX Runtime's dynamic quantisation gives each MatMul input one scale per call (`tasks.token_scales`: one per
token). In BERT-like encoders the input of each feed-forward block (the attention block's LayerNorm output) has a few
channels whose values reach 5-15 times the others' (in MiniLM channel 99 at about 28 against a median of about 2, on
every text, in every token), so int8 spends its 256 levels on them and rounds the rest coarsely. Outlier channel splitting (Zhao et al., ICML 2019) feeds such a channel
j as m_j copies of x_j / m_j, each with j's weight row: the product is unchanged in fp32, the input's range shrinks
to `threshold` times the median channel, and it is still one int8 MatMul. Which channels, and how many copies, is
measured once per model on a few fixed English sentences: these outliers belong to the model, not to the texts
(the same channels stood out on the Amazon reviews of all three domains; BENCHMARKS.md, "Int8 inference").
"""

from __future__ import annotations

import re

import numpy as np

# The MatMuls whose inputs are split: the feed-forward block's two projections, by the export's names for BERT,
# RoBERTa, MPNet, ELECTRA and others that name them so (measured on MiniLM, a BERT: the first projection's input has
# channels up to 14x its median channel in every layer, the second's, after GELU, one channel 12-23x in layers 0-3;
# the attention's inputs had none above 5x). Encoders that name them otherwise are left as they are. In fp32 the
# split changes no answer, and an input without outliers is left as it is.
SPLIT_INPUTS = r"(intermediate|layer\.\d+/output)/dense/MatMul$"
MAX_COPIES = 32  # per channel: MiniLM's largest channel needs 4 at 8x the median
CALIBRATION_TEXTS = (
    "The meeting was moved to Thursday because half the team was travelling.",
    "I bought this for my daughter and she has not put it down since.",
    "Stocks fell sharply on Monday after the central bank raised interest rates again.",
    "Preheat the oven to 200 degrees and grease a large baking tray.",
    "Does anyone know whether the library is open on public holidays?",
    "The plot drags in the middle, but the last hundred pages are gripping.",
    "After two weeks the battery barely lasts a morning, which is disappointing.",
    "Researchers found that the new treatment reduced symptoms in most patients.",
    "It arrived broken, and customer service never answered my emails.",
    "What a lovely little cafe; the staff were friendly and the coffee was excellent.",
    "The train was late again, so I missed the first half of the film.",
    "Please find attached the report for the third quarter.",
    "He scored twice in the second half to win the match for his team.",
    "This blender is loud, but it crushes ice in seconds and is easy to clean.",
    "Honestly, I expected more from an author with so many awards.",
    "The river flooded the lower fields after a week of heavy rain.",
)


def copies_per_channel(absmax: np.ndarray, threshold: float) -> np.ndarray:
    """How many copies each input channel is fed as: ceil(absmax / (threshold x median absmax)), at least 1 and at
    most MAX_COPIES (a near-dead input, its median near 0, would otherwise ask for thousands)."""
    limit = threshold * float(np.median(absmax))
    if limit <= 0:
        return np.ones(len(absmax), dtype=np.int64)
    return np.clip(np.ceil(absmax / limit), 1, MAX_COPIES).astype(np.int64)


def input_absmax(graph, tokenizer, keep_fp32: str = "", max_length: int = 128) -> dict[str, np.ndarray]:
    """Per split MatMul input, each channel's largest |value| over the calibration texts' attended tokens."""
    import onnx
    import onnxruntime

    from tasks.batching import pad_batch, pad_id_of, tokenize

    probe = onnx.ModelProto()
    probe.CopyFrom(graph)  # the caller's graph stays as it is
    inputs = list(dict.fromkeys(node.input[0] for node in probe.graph.node if _is_split(node, keep_fp32)))
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in inputs)
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    batch = pad_batch(tokenize(tokenizer, list(CALIBRATION_TEXTS), max_length), pad_id_of(tokenizer))
    feeds = {name: tensor.numpy().astype(np.int64) for name, tensor in batch.items()}
    attended = feeds["attention_mask"].astype(bool)
    return {name: np.abs(values[attended]).max(axis=0)
            for name, values in zip(inputs, session.run(inputs, feeds), strict=True)}


def split_outlier_channels(graph, tokenizer, threshold: float, keep_fp32: str = "") -> int:
    """Rewrite `graph` (an onnx ModelProto, in place) so each split MatMul takes its outlier channels as copies;
    returns the number of channels added over all of them. MatMuls whose names match `keep_fp32` (left in fp32 by the
    quantisation, `Int8Settings.keep_fp32`) are not split: fp32 needs no split."""
    absmax = input_absmax(graph, tokenizer, keep_fp32)
    weights = {initializer.name: initializer for initializer in graph.graph.initializer}
    nodes, replaced, added = [], set(), 0
    for node in graph.graph.node:
        copies = copies_per_channel(absmax[node.input[0]], threshold) if _is_split(node, keep_fp32) else None
        if copies is None or copies.max() == 1 or node.input[1] not in weights:
            nodes.append(node)
            continue
        nodes += _fed_as_copies(graph, node, weights[node.input[1]], copies)
        replaced.add(node.input[1])
        added += int((copies - 1).sum())
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input} | {output.name for output in graph.graph.output}
    unused = [initializer for initializer in graph.graph.initializer if initializer.name in replaced - used]
    for initializer in unused:  # only the weights the split replaced, once nothing reads them
        graph.graph.initializer.remove(initializer)
    return added


def _fed_as_copies(graph, node, weight, copies: np.ndarray) -> list:
    """The nodes that feed `node`'s input channel j as copies[j] copies of x_j / copies[j] (its initializers added to
    `graph`): Mul, Gather of the extra copies, Concat, and the MatMul with the weight rows repeated."""
    from onnx import helper, numpy_helper

    extra = np.repeat(np.arange(len(copies)), copies - 1)
    rows = numpy_helper.to_array(weight)
    name = node.name.removesuffix("MatMul") + "outlier_split/"
    graph.graph.initializer.extend([
        numpy_helper.from_array((1.0 / copies).astype(np.float32), name + "scale"),
        numpy_helper.from_array(extra.astype(np.int64), name + "copies"),
        numpy_helper.from_array(np.concatenate([rows, rows[extra]]).astype(rows.dtype), name + "weight")])
    return [helper.make_node("Mul", [node.input[0], name + "scale"], [name + "scaled"], name=name + "Mul"),
            helper.make_node("Gather", [name + "scaled", name + "copies"], [name + "extra"], name=name + "Gather",
                             axis=-1),
            helper.make_node("Concat", [name + "scaled", name + "extra"], [name + "input"], name=name + "Concat",
                             axis=-1),
            helper.make_node("MatMul", [name + "input", name + "weight"], list(node.output), name=node.name)]


def _is_split(node, keep_fp32: str) -> bool:
    return (node.op_type == "MatMul" and re.search(SPLIT_INPUTS, node.name) is not None
            and not (keep_fp32 and re.search(keep_fp32, node.name)))
