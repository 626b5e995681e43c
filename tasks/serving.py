"""The registered model as MLflow loads and serves it: `predict(DataFrame with "text") -> DataFrame(label, score)`.

    mlflow.pyfunc.load_model("models:/adaptflow-classifier@champion").predict(pd.DataFrame({"text": [...]}))

MLflow stores this file with the model ("model from code") and runs it to build the model, so it imports nothing
from adaptflow: the model loads and predicts wherever `mlflow`, `torch` and `transformers` are installed. The weights
travel as the `model_dir` artifact (a Hugging Face text classifier), labelled by a `transformers` pipeline.
A request with no `text` column, or a text that is missing, empty or not a string, is refused with the row named
(HTTP 400 under `mlflow models serve`).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class TextClassifier(PythonModel):
    """Labels texts with the classifier in the `model_dir` artifact; settings come from the model config."""

    def load_context(self, context: Any) -> None:
        import torch
        from transformers import pipeline

        settings = context.model_config or {}
        self.max_length = int(settings.get("max_length", 128))
        self.batch_size = int(settings.get("batch_size", 64))
        self.classify = pipeline("text-classification", model=context.artifacts["model_dir"],
                                 device=0 if torch.cuda.is_available() else -1)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        texts = checked_texts(model_input)
        labelled = self.classify(texts, batch_size=self.batch_size, truncation=True, max_length=self.max_length)
        return pd.DataFrame({"label": [item["label"] for item in labelled],
                             "score": [float(item["score"]) for item in labelled]})


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
