"""The registered model as MLflow loads and serves it: `predict(DataFrame with "text") -> DataFrame(label, score)`.

    mlflow.pyfunc.load_model("models:/adaptflow-classifier@champion").predict(pd.DataFrame({"text": [...]}))

MLflow stores this file with the model ("model from code") and runs it to build the model, so it imports nothing
from adaptflow: the model loads and predicts wherever `mlflow`, `torch`, `transformers` and `onnxruntime` are
installed (with `mean_pooling.py`, which MLflow stores beside it: the classifier class of models whose head reads
the mean of the token states, and `cpu_features.py`). The weights travel as the `model_dir` artifact (a Hugging Face
text classifier) and, where the training machine's `inference.backend` resolved to ONNX (`onnx-int8`, or `auto` on a
CPU without native bf16), as `onnx_int8`, their int8 ONNX export: on a CPU that graph labels the texts in ONNX
Runtime, and the fp32 export (`onnx_fp32`) labels again its close calls (`int8_recheck`). Otherwise (on a GPU, with
no ONNX export, or with the `backend` setting `torch`) a `transformers` pipeline does, in bf16 autocast on a CPU
that computes bf16 natively when the `precision` setting is `auto` or `bf16`, as the engine's evaluation does
(BENCHMARKS.md: the faster of the two on such a CPU). A request with no `text` column, or a text that is missing,
empty or not a string, is refused with the row named (HTTP 400 under `mlflow models serve`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

try:  # adaptflow's own modules where it is installed (the mean-pooled classifier registers with transformers)
    import tasks.mean_pooling  # noqa: F401
    from tasks.attention_kernels import shape_free_attention
    from tasks.cpu_features import cpu_precision
except ImportError:  # elsewhere the copies shipped beside this file (code_paths)
    import mean_pooling  # noqa: F401
    from attention_kernels import shape_free_attention
    from cpu_features import cpu_precision


class TextClassifier(PythonModel):
    """Labels texts with the classifier in the `model_dir` artifact; settings come from the model config."""

    def load_context(self, context: Any) -> None:
        import torch
        from transformers import pipeline

        settings = context.model_config or {}
        self.max_length = int(settings.get("max_length", 128))
        self.batch_size = int(settings.get("batch_size", 64))
        onnx = context.artifacts.get("onnx_int8")
        gpu = torch.cuda.is_available()
        self.bf16 = False
        if onnx and settings.get("backend", "auto") != "torch" and not gpu:
            # texts per ONNX Runtime call inside each batch, as the evaluation labelled them
            # (tasks.onnx_inference.INT8_BATCH); models logged without the setting ran one call per batch
            texts_per_run = int(settings.get("int8_batch_size", self.batch_size))
            self.classify = OnnxLabeller(onnx, context.artifacts["model_dir"], self.max_length, texts_per_run,
                                         context.artifacts.get("onnx_fp32"), float(settings.get("int8_recheck", 0)))
            return
        shape_free_attention("cuda" if gpu else "cpu")  # on a GPU: each request's texts make a new shape
        self.classify = pipeline("text-classification", model=context.artifacts["model_dir"], device=0 if gpu else -1)
        self.bf16 = not gpu and cpu_precision(settings.get("precision", "auto")) == "bf16"

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        import torch

        texts = checked_texts(model_input)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            labelled = self.classify(texts, batch_size=self.batch_size, truncation=True, max_length=self.max_length)
        return pd.DataFrame({"label": [item["label"] for item in labelled],
                             "score": [float(item["score"]) for item in labelled]})


class OnnxLabeller:
    """The int8 ONNX graph in ONNX Runtime, answering as the transformers pipeline does ([{label, score}, ...]) and
    labelling as the evaluation does (tasks.inference with tasks.onnx_inference.OnnxClassifier), so that the same
    texts get the same scores: sorted by length, longest first, cut into batches of `batch_size`, each batch run
    `texts_per_run` texts a call, each call padded to its own longest text with the evaluation's pad id. With the
    fp32 graph (`recheck_path`) and a `margin`, the texts whose two likeliest labels are closer than `margin` are
    labelled again by it, in one call per batch, as the evaluation's `inference.int8_recheck` does."""

    def __init__(self, onnx_path: str, model_dir: str, max_length: int, texts_per_run: int,
                 recheck_path: str | None = None, margin: float = 0.0) -> None:
        import onnxruntime
        import torch
        from transformers import AutoConfig, AutoTokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        self.recheck = (onnxruntime.InferenceSession(recheck_path, options, providers=["CPUExecutionProvider"])
                        if recheck_path and margin > 0 else None)
        self.margin = margin
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.id2label = AutoConfig.from_pretrained(model_dir).id2label
        self.max_length, self.texts_per_run = max_length, texts_per_run
        # tasks.batching.pad_id_of: the pad token, else the end-of-text token, else 0 (padding enters int8's scale)
        self.pad_id = next((int(token) for token in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id)
                            if token is not None), 0)

    def __call__(self, texts: list[str], batch_size: int, **_: Any) -> list[dict[str, Any]]:
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        # longest first, ties in request order: the evaluation's batches (tasks.batching.sorted_batches), so that
        # each text is labelled in the call, and re-checked in the batch, that the evaluation used
        order = sorted(range(len(texts)), key=lambda index: -len(ids[index]))
        labelled: list[dict[str, Any]] = [{}] * len(texts)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            probabilities = np.concatenate([self._probabilities(self.session, ids, batch[run:run + self.texts_per_run])
                                            for run in range(0, len(batch), self.texts_per_run)])
            if self.recheck is not None:
                close = np.flatnonzero(top_two_gap(probabilities) < self.margin).tolist()
                if close:
                    probabilities[close] = self._probabilities(self.recheck, ids, [batch[row] for row in close])
            for row, index in enumerate(batch):
                best = int(probabilities[row].argmax())
                labelled[index] = {"label": self.id2label[best], "score": float(probabilities[row, best])}
        return labelled

    def _probabilities(self, session: Any, ids: list[list[int]], indices: list[int]) -> np.ndarray:
        """One ONNX Runtime call of `session` on the texts at `indices`, padded to the longest of them."""
        width = max(len(ids[index]) for index in indices)
        input_ids = np.full((len(indices), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(indices), width), dtype=np.int64)
        for row, index in enumerate(indices):
            input_ids[row, :len(ids[index])], mask[row, :len(ids[index])] = ids[index], 1
        logits = session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})[0]
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        return probabilities / probabilities.sum(axis=1, keepdims=True)


def top_two_gap(probabilities: np.ndarray) -> np.ndarray:
    """Per row, the likeliest label's probability minus the second likeliest's (1 where there is one label): as
    tasks.onnx_inference.top_two_gap gives from logits, which this file cannot import."""
    if probabilities.shape[1] < 2:
        return np.ones(len(probabilities))
    top = np.sort(probabilities, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def checked_texts(model_input: Any) -> list[str]:
    """The texts of a request: a DataFrame's `text` column (or a list of strings), each a non-empty string."""
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            raise MlflowException.invalid_parameter_value(
                f"the input has the columns {[str(c) for c in model_input.columns]}; send a 'text' column")
        values = model_input["text"].tolist()
    elif isinstance(model_input, dict) and "text" in model_input:
        values = list(model_input["text"]) if not isinstance(model_input["text"], str) else [model_input["text"]]
    elif isinstance(model_input, str):
        values = [model_input]
    else:
        values = list(model_input)
    for row, value in enumerate(values):
        if not isinstance(value, str):
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            shown = "null" if missing else f"{type(value).__name__} {value!r}"
            raise MlflowException.invalid_parameter_value(f"row {row}: 'text' is {shown}; send a string")
        if not value.strip():
            raise MlflowException.invalid_parameter_value(f"row {row}: 'text' is empty; send a non-empty string")
    return values


set_model(TextClassifier())
