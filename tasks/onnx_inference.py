"""Inference through ONNX Runtime: a fine-tuned classifier exported to ONNX, optionally quantised to int8.

`inference.backend` picks what labels texts in evaluation and `adaptflow predict`: `torch` (the engine), `onnx` (the
same fp32 graph in ONNX Runtime) or `onnx-int8` (its weights quantised dynamically to int8 by
`onnxruntime.quantization`); `auto` is `torch` on a GPU or a CPU with native bf16 and `onnx-int8` on a CPU without
(BENCHMARKS.md: on such a CPU int8 ran MiniLM at 4.3x the naive loop; with native bf16 on AMX, torch's bf16 is
faster than int8: 4.5x against 3.4x the naive loop, close calls re-checked). The export traces eager attention and,
for BERT-like encoders, is fused by ONNX Runtime's transformer optimizer, which made int8 1.4x faster (int8 takes
the fused attention apart again for its QKV projection, and keeps the other fusions); before int8, the feed-forward
projections' outlier input channels are split into copies that one int8 scale fits (`tasks.outlier_channels`), and
every int8 MatMul quantises its input with one scale per token, not per call (`tasks.token_scales`); the texts whose
two likeliest labels int8 puts closer than `inference.int8_recheck` are labelled again by the fp32 graph. Exports
are cached under `inference.cache_dir` by a hash of the weights and config, so each model is exported once. An
`OnnxClassifier` answers as the torch model does (`config`, `(**inputs).logits`), so `tasks.inference` sorts, pads
and batches for both alike.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import numpy as np
import torch

from tasks.config.sections import InferenceConfig
from tasks.errors import ModelError

Backend = Literal["auto", "torch", "onnx", "onnx-int8"]
OPSET = 17
# Encoder types whose graphs ONNX Runtime's transformer optimizer fuses (`model_type="bert"`: one Attention node per
# layer, EmbedLayerNormalization, SkipLayerNormalization, BiasGelu); other encoders are exported unfused. The export
# traces eager attention: the graph of the sdpa kernel hides the attention pattern from the fusion and adds masking
# and NaN-guard nodes (Where, IsNaN) that took a fifth of ONNX Runtime's time on MiniLM (BENCHMARKS.md).
FUSED_ENCODERS = frozenset({"bert", "roberta", "xlm-roberta"})


@dataclass(frozen=True)
class Int8Settings:
    """How `onnxruntime.quantization.quantize_dynamic` quantises the export: the MatMul/Gemm weights' type, one
    scale per output channel or per tensor, a pattern of node names left in fp32, and the outlier channel split."""

    weight_type: str
    per_channel: bool
    keep_fp32: str  # a regular expression over the ONNX node names; "" keeps none
    # feed-forward input channels above this many times the median channel are split (tasks.outlier_channels); 0: none
    split_outliers: float = 0.0
    # each token's activations quantised on their own range, the fused attention taken apart so its QKV projection
    # is too (tasks.token_scales); False: one scale per MatMul input per call, as quantize_dynamic does
    per_token: bool = False

    def excluded(self, graph) -> list[str]:
        """The names of `graph`'s (an onnx ModelProto) nodes that `keep_fp32` leaves in fp32."""
        if not self.keep_fp32:
            return []
        # not Gemm: the quantiser turns a Gemm into a MatMul of another name before it applies exclusions
        return [node.name for node in graph.graph.node
                if node.op_type in QUANTISABLE and re.search(self.keep_fp32, node.name)]


QUANTISABLE = ("MatMul", "Attention", "EmbedLayerNormalization")  # what a fused BERT graph gives the quantiser


# Chosen by agreement with the fp32 torch model on unlabelled target texts of the six Amazon pairs (never the test
# sets; BENCHMARKS.md, "Int8 inference"), each round by a rule written before its rows were read. Rounds 1-4
# (2026-12-03/05): int8 weights per channel, the fused graph. Rule 7 (2026-12-05): the feed-forward input's outlier
# channels split at 8x the median. Rule 11 (2026-12-05, a fair dev sample of 1,000 texts per pair): per-token
# activation scales on every int8 MatMul, the attention's QKV projection included, and the feed-forward output
# projection in int8 too (its input's outlier channel split at 8x as well): 99.62 % agreement (worst pair 99.4 %)
# against 99.42 % (99.1 %) for rule 7's graph, in 0.94x its time. Every architecture gets per-token scales on
# every weight MatMul; the split reaches the encoders that name their layers as BERT does (SPLIT_INPUTS).
INT8 = Int8Settings(weight_type="QInt8", per_channel=True, keep_fp32="", split_outliers=8.0, per_token=True)
# The int8 graph labels at most this many texts per ONNX Runtime call, each call's texts padded only to their own
# longest; the evaluation's batches (`evaluation.batch_size`) are split to it. Chosen by round 4's rule on the same
# dev texts (2026-12-05, BENCHMARKS.md): batches of 16 agree with fp32 torch as batches of 64 do (99.27 % against
# 99.23 %; on the pools' other texts 98.90 against 98.68 %) and ran the 6 x 1,000 texts in 55.8 s against 64.2 s.
# That was with one activation scale per call, when the batch changed int8's labels as well as its speed; with
# per-token scales a text's labels no longer depend on the texts it is labelled with.
INT8_BATCH = 16
INT8_RECHECK = InferenceConfig.model_fields["int8_recheck"].default  # declared, with its measurement, in the config


def resolve_backend(setting: Backend, device: torch.device, precision: str) -> str:
    """`auto` -> `torch` on a GPU or where the engine runs bf16, else `onnx-int8`; the others as given."""
    if setting != "auto":
        return setting
    return "torch" if device.type == "cuda" or precision == "bf16" else "onnx-int8"


def exported(model_dir: Path, cache_dir: Path, int8: bool) -> Path:
    """The ONNX file of the classifier in `model_dir` (int8-quantised when `int8`), exported once per weights; an
    int8 file has the fp32 one it was quantised from beside it (`fp32_beside`)."""
    target = Path(cache_dir) / weights_digest(model_dir) / ("model.int8.onnx" if int8 else "model.onnx")
    fp32 = fp32_beside(target)
    if target.is_file() and fp32.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        if not fp32.is_file():
            _export(model_dir, Path(work) / "model.onnx")
            shutil.move(str(Path(work) / "model.onnx"), fp32)  # a rename: never a half-written file in the cache
        if int8 and not target.is_file():
            from tasks.models import load_tokenizer

            quantise(fp32, Path(work) / "model.int8.onnx", tokenizer=load_tokenizer(str(model_dir)))
            shutil.move(str(Path(work) / "model.int8.onnx"), target)
    return target


def fp32_beside(exported_path: Path) -> Path:
    """The fp32 graph in the cache directory of an `exported` file (itself, for the fp32 one)."""
    return Path(exported_path).with_name("model.onnx")


def quantise(fp32: Path, path: Path, settings: Int8Settings = INT8, tokenizer=None) -> None:
    """Write the int8 graph of the fp32 graph `fp32` to `path`, quantised dynamically as `settings` say (the outlier
    split measures the model on `tokenizer`'s ids of fixed sentences)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if settings.split_outliers and tokenizer is None:
        raise ValueError("quantise: splitting outlier channels needs the model's tokenizer: pass tokenizer=, or "
                         "settings with split_outliers=0")
    graph = onnx.load(str(fp32))
    if settings.split_outliers:
        from tasks.outlier_channels import split_outlier_channels

        split_outlier_channels(graph, tokenizer, settings.split_outliers, keep_fp32=settings.keep_fp32)
    if settings.per_token:
        from tasks.token_scales import unfuse_attention

        unfuse_attention(graph)
    prepared = Path(path).with_name(Path(path).stem + ".prepared.onnx")
    per_call = Path(path).with_name(Path(path).stem + ".per_call.onnx") if settings.per_token else Path(path)
    onnx.save(graph, str(prepared))
    try:
        # the fused nodes are ONNX Runtime's own (com.microsoft), which onnx's shape inference does not type: their
        # outputs are fp32 tensors
        quantize_dynamic(prepared, per_call, weight_type=QuantType[settings.weight_type],
                         per_channel=settings.per_channel, nodes_to_exclude=settings.excluded(graph),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        if settings.per_token:  # `path` is written only once the per-token graph is whole
            _write_per_token(per_call, path, fp32)
    finally:
        prepared.unlink(missing_ok=True)
        if per_call != Path(path):
            per_call.unlink(missing_ok=True)


def _write_per_token(per_call: Path, path: Path, fp32: Path) -> None:
    import onnx

    from tasks.token_scales import per_token_scales

    quantised = onnx.load(str(per_call))
    per_token_scales(quantised)
    left = sum(1 for node in quantised.graph.node if node.op_type == "MatMulInteger")
    if left:
        import onnxruntime

        raise ModelError(f"{fp32}: {left} int8 MatMuls could not be given per-token scales: onnxruntime "
                         f"{onnxruntime.__version__}'s quantize_dynamic wrote a graph tasks.token_scales does not "
                         "know; use inference.backend onnx or torch, or the onnxruntime version in constraints.txt")
    onnx.save(quantised, str(path))


def weights_digest(model_dir: Path) -> str:
    """A short hash of a saved model's weights and config, and of the export settings (what decides its ONNX export)."""
    import onnxruntime

    from tasks import outlier_channels, token_scales

    split = (outlier_channels.SPLIT_INPUTS, outlier_channels.MAX_COPIES, outlier_channels.CALIBRATION_TEXTS)
    tokens = (token_scales.TOKEN_LEVELS, token_scales.ZERO_POINT)
    digest = hashlib.sha256(f"opset {OPSET}, {INT8}, {split}, {tokens}, eager attention, fused "
                            f"{sorted(FUSED_ENCODERS)}, onnxruntime {onnxruntime.__version__}".encode())
    for name in ("config.json", "model.safetensors"):
        path = Path(model_dir) / name
        if not path.is_file():
            raise ModelError(f"{model_dir}: no {name}; ONNX export needs a saved classifier (run the train stage)")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


class _Logits(torch.nn.Module):
    """The classifier as a graph of (input_ids, attention_mask) -> logits."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _export(model_dir: Path, path: Path, attention: str = "eager", fuse: bool = True) -> None:
    from tasks.models import load_classifier_dir

    model = load_classifier_dir(str(model_dir)).float().eval()
    model.base_model.set_attn_implementation(attention)
    example = torch.ones((2, 8), dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}}
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(_Logits(model), (example, example), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    encoder = model.base_model.config
    if fuse and encoder.model_type in FUSED_ENCODERS:
        from onnxruntime.transformers.optimizer import optimize_model

        fused = optimize_model(str(path), model_type="bert", num_heads=encoder.num_attention_heads,
                               hidden_size=encoder.hidden_size, opt_level=0)
        fused.save_model_to_file(str(path))


class OnnxClassifier:
    """An ONNX Runtime session that `tasks.inference.predict` can use in place of the torch classifier."""

    training = False

    def __init__(self, path: Path, config, threads: int | None = None, texts_per_run: int | None = None,
                 recheck: OnnxClassifier | None = None, margin: float = 0.0) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.config = config
        self.path = Path(path)
        self.texts_per_run = texts_per_run  # None: the whole batch in one call
        # the rows whose two likeliest labels are closer than `margin` are labelled again by `recheck` (the fp32
        # graph of an int8 one: inference.int8_recheck), in one call per batch
        self.recheck, self.margin = recheck, margin
        self.rechecked = 0  # rows labelled again so far (benchmarks report it)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        ids, mask = input_ids.cpu().numpy().astype(np.int64), attention_mask.cpu().numpy().astype(np.int64)
        step = self.texts_per_run or max(1, len(ids))
        logits = [self.run_rows(ids[start:start + step], mask[start:start + step])
                  for start in range(0, len(ids), step)]
        logits = np.concatenate(logits) if logits else np.zeros((0, 0), dtype=np.float32)
        if self.recheck is not None and self.margin > 0 and len(logits):
            close = np.flatnonzero(top_two_gap(logits) < self.margin)
            if len(close):
                logits[close] = self.recheck.run_rows(ids[close], mask[close])
                self.rechecked += len(close)
        return SimpleNamespace(logits=torch.from_numpy(logits))

    def run_rows(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One ONNX Runtime call on these rows, cut after the last column any of them attends to."""
        attended = np.flatnonzero(mask.any(axis=0))
        width = int(attended[-1]) + 1 if len(attended) else ids.shape[1]
        return self.session.run(["logits"], {"input_ids": np.ascontiguousarray(ids[:, :width]),
                                             "attention_mask": np.ascontiguousarray(mask[:, :width])})[0]

    def eval(self) -> OnnxClassifier:
        return self

    def train(self, mode: bool = True) -> OnnxClassifier:
        return self

    def parameters(self):
        return iter(())  # tasks.devices.device_of: the CPU


def load_for_inference(model_dir: Path, labels: tuple[str, ...] | None, backend: str, cache_dir: Path,
                       device: torch.device, recheck_margin: float = INT8_RECHECK):
    """The classifier in `model_dir` on the resolved `backend`: the torch model on `device`, or an ONNX session
    (for `onnx-int8`, its close calls re-checked by the fp32 graph: `recheck_margin`, inference.int8_recheck)."""
    from tasks.models import load_classifier, load_classifier_dir

    if backend == "torch":
        model = load_classifier_dir(str(model_dir)) if labels is None else load_classifier(str(model_dir), labels)
        return model.to(device)
    from transformers import AutoConfig

    from tasks.models import check_model_dir, trained_labels

    check_model_dir(str(model_dir))
    config = AutoConfig.from_pretrained(str(model_dir), trust_remote_code=False)
    trained = trained_labels(config)
    if trained is None or (labels is not None and trained != list(labels)):
        raise ModelError(f"{model_dir}: " + ("is not a fine-tuned classifier (no classification head)" if trained is None
                         else f"was trained on labels {trained} but the data has {list(labels)}"))
    if backend != "onnx-int8":
        return OnnxClassifier(exported(Path(model_dir), cache_dir, int8=False), config)
    int8 = exported(Path(model_dir), cache_dir, int8=True)
    recheck = OnnxClassifier(fp32_beside(int8), config) if recheck_margin > 0 else None
    return OnnxClassifier(int8, config, texts_per_run=INT8_BATCH, recheck=recheck, margin=recheck_margin)


def top_two_gap(logits: np.ndarray) -> np.ndarray:
    """Per row, the probability of the likeliest label minus the second likeliest's (1 where there is one label)."""
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    if probabilities.shape[1] < 2:
        return np.ones(len(probabilities))
    top = np.sort(probabilities, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]
