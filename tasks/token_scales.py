"""Per-token activation scales for ONNX Runtime's dynamic int8: each token quantised on its own range.

`onnxruntime.quantization.quantize_dynamic` quantises each MatMul input with one scale per call (DynamicQuantizeLinear),
shared by every token of every text in the call. A few tokens (in BERT-like encoders [CLS], [SEP] and punctuation)
carry activations far above the rest, so the others get few of the 256 levels, and a text's labels depend on the
texts it is labelled with. Per-token scales (as in LLM.int8() and ZeroQuant) give each token r = max|x_token| / 127:
x is quantised symmetrically around 128 by one per-axis QuantizeLinear over x as [tokens, channels], multiplied in
int8 by MatMulIntegerToFloat (its scale then only the weights'), and the product is multiplied by r. The fused
Attention node quantises its input per call inside the node, so before quantising it is taken apart into its QKV
projection (a MatMul, quantised per token like the others) and a MultiHeadAttention node of the same heads, bias and
mask. Measured on MiniLM (BENCHMARKS.md, "Int8 inference", rules 8-11).
"""

from __future__ import annotations

import numpy as np

TOKEN_LEVELS = 127  # r = max|x_token| / 127: symmetric, 255 of uint8's levels around the zero point 128
ZERO_POINT = 128


def unfuse_attention(graph) -> int:
    """Rewrite `graph` (an fp32 onnx ModelProto, in place) so each fused `Attention` node (ONNX Runtime's transformer
    optimizer) is its QKV MatMul, a Split and a `MultiHeadAttention` node; returns how many. The fp32 answers do not
    change (same weights, bias, heads and mask index)."""
    from onnx import helper, numpy_helper

    weights = {initializer.name: initializer for initializer in graph.graph.initializer}
    nodes, count = [], 0
    for node in graph.graph.node:
        if node.op_type != "Attention" or node.domain != "com.microsoft" or len(node.input) < 4 or any(
                node.input[4:]) or any(attribute.name not in ("num_heads", "mask_filter_value", "scale")
                                       for attribute in node.attribute):  # past states, extra biases: left fused
            nodes.append(node)
            continue
        source, weight, bias, mask = node.input[:4]
        hidden = weights[weight].dims[1] // 3
        name = node.name + "/unfused/"
        graph.graph.initializer.append(numpy_helper.from_array(np.array([hidden] * 3, np.int64), name + "sizes"))
        attention = helper.make_node("MultiHeadAttention", [name + "q", name + "k", name + "v", bias, mask],
                                     list(node.output), name=name + "MultiHeadAttention", domain="com.microsoft")
        attention.attribute.extend(node.attribute)
        nodes += [helper.make_node("MatMul", [source, weight], [name + "qkv"], name=name + "MatMul"),
                  helper.make_node("Split", [name + "qkv", name + "sizes"], [name + "q", name + "k", name + "v"],
                                   name=name + "Split", axis=-1),
                  attention]
        count += 1
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    return count


def per_token_scales(graph) -> int:
    """Rewrite a `quantize_dynamic` graph (in place) so each dynamically quantised input that only weight
    MatMulIntegers read is quantised per token; returns how many inputs. Other quantised inputs (a fused QAttention's)
    stay, and so does any MatMulInteger whose dequantisation is not the Cast and Mul that quantize_dynamic writes."""
    from onnx import helper, numpy_helper

    original = list(graph.graph.node)  # held, so that id() names each node for the whole rewrite
    readers, writers = {}, {output: node for node in original for output in node.output}
    for node in original:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    weights = {initializer.name: initializer for initializer in graph.graph.initializer}
    inserted, dropped, count = {}, set(), 0  # by id(): quantize_dynamic may leave nodes unnamed
    for node in original:
        if node.op_type != "DynamicQuantizeLinear":
            continue
        chains = [_dequantisation(user, node, readers, writers, weights) for user in readers.get(node.output[0], [])]
        replaced = {id(part) for chain in chains if chain for part in chain[:4]}
        if not chains or not all(chains) or any(id(reader) not in replaced for output in node.output[1:]
                                                for reader in readers.get(output, [])):
            continue
        name = (node.name or node.output[0]) + "/per_token/"
        channels = weights[chains[0][0].input[1]].dims[0]
        graph.graph.initializer.append(numpy_helper.from_array(np.array([-1, channels], np.int64), name + "rows"))
        inserted[id(node)] = _token_quantisation(helper, node.input[0], node.output[0], name, opset(graph))
        dropped |= {id(node)} | replaced
        for matmul, _, rescale, _, weight_scale in chains:
            zero_point = [matmul.input[3]] if len(matmul.input) > 3 and matmul.input[3] else []
            product = rescale.output[0] + "/per_token/unscaled"
            inserted[id(matmul)] = [
                helper.make_node("MatMulIntegerToFloat", [node.output[0], matmul.input[1], "per_token/one",
                                                          weight_scale, "per_token/zero_point", *zero_point],
                                 [product], name=product + "/MatMulIntegerToFloat", domain="com.microsoft"),
                helper.make_node("Mul", [product, name + "scale"], [rescale.output[0]], name=product + "/Mul")]
        count += 1
    if count:  # the constants the new nodes share; none that no node reads (ONNX Runtime warns of those at each load)
        shared = {"per_token/inverse_levels": np.array(1 / TOKEN_LEVELS, np.float32),
                  "per_token/smallest_scale": np.array(np.finfo(np.float32).tiny, np.float32),
                  "per_token/one": np.array(1.0, np.float32), "per_token/zero_point": np.array(ZERO_POINT, np.uint8),
                  "per_token/flat": np.array([-1], np.int64)}
        if opset(graph) >= 18:
            shared["per_token/last_axis"] = np.array([-1], np.int64)
        graph.graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in shared.items())
    nodes = []
    for node in original:
        nodes += inserted.get(id(node), [])
        if id(node) not in dropped:
            nodes.append(node)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    return count


def _dequantisation(node, quantiser, readers: dict, writers: dict, weights: dict) -> tuple | None:
    """(MatMulInteger, Cast, Mul, scales Mul, weight scale name) where `node` is what `quantize_dynamic` writes for a
    weight MatMul of `quantiser`'s output: a MatMulInteger of an initializer, read only by a Cast to float, read only
    by a Mul by the product of the input's scale and the weight's; None for anything else."""
    if node.op_type != "MatMulInteger" or node.input[1] not in weights:
        return None
    cast = readers.get(node.output[0], [])
    if len(cast) != 1 or cast[0].op_type != "Cast":
        return None
    rescale = readers.get(cast[0].output[0], [])
    if len(rescale) != 1 or rescale[0].op_type != "Mul":
        return None
    scales = writers.get(next((name for name in rescale[0].input if name != cast[0].output[0]), ""))
    if scales is None or scales.op_type != "Mul" or quantiser.output[1] not in scales.input:
        return None
    weight_scale = next((name for name in scales.input if name != quantiser.output[1]), None)
    if weight_scale is None or len(readers.get(scales.output[0], [])) != 1:
        return None
    return node, cast[0], rescale[0], scales, weight_scale


def opset(graph) -> int:
    """The graph's version of the default ONNX domain."""
    return next(entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx"))


def _token_quantisation(helper, source: str, quantised: str, name: str, version: int) -> list:
    """The nodes that write `quantised` (uint8, zero point 128) and `name + "scale"` (r per token, [..., 1]) from the
    fp32 `source`: r = max(max x, -min x) / 127 over the channels, at least float32's smallest normal number (an
    all-zero token stays 0, not 0 / 0), and x / r rounded by a per-axis QuantizeLinear."""
    # ReduceMax/ReduceMin take their axes as an attribute up to opset 17 and as an input from opset 18
    axes = {"axes": [-1]} if version < 18 else {}
    over_channels = [] if version < 18 else ["per_token/last_axis"]
    return [
        helper.make_node("ReduceMax", [source, *over_channels], [name + "max"], name=name + "ReduceMax", keepdims=1,
                         **axes),
        helper.make_node("ReduceMin", [source, *over_channels], [name + "min"], name=name + "ReduceMin", keepdims=1,
                         **axes),
        helper.make_node("Neg", [name + "min"], [name + "negated_min"], name=name + "Neg"),
        helper.make_node("Max", [name + "max", name + "negated_min"], [name + "absmax"], name=name + "Max"),
        helper.make_node("Mul", [name + "absmax", "per_token/inverse_levels"], [name + "unfloored_scale"],
                         name=name + "Scale"),
        helper.make_node("Max", [name + "unfloored_scale", "per_token/smallest_scale"], [name + "scale"],
                         name=name + "Floor"),
        # one scale per token: x as [tokens, channels], quantised along axis 0 (the Reshapes copy nothing)
        helper.make_node("Shape", [source], [name + "shape"], name=name + "Shape"),
        helper.make_node("Reshape", [source, name + "rows"], [name + "rows_of_x"], name=name + "Reshape"),
        helper.make_node("Reshape", [name + "scale", "per_token/flat"], [name + "token_scales"],
                         name=name + "ReshapeScale"),
        helper.make_node("Shape", [name + "token_scales"], [name + "tokens"], name=name + "Tokens"),
        helper.make_node("Expand", ["per_token/zero_point", name + "tokens"], [name + "zero_points"],
                         name=name + "ZeroPoints"),
        helper.make_node("QuantizeLinear", [name + "rows_of_x", name + "token_scales", name + "zero_points"],
                         [name + "rows_quantised"], name=name + "QuantizeLinear", axis=0),
        helper.make_node("Reshape", [name + "rows_quantised", name + "shape"], [quantised], name=name + "ReshapeBack")]
