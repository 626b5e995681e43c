"""The MLflow pyfunc form of a fine-tuned classifier: `predict(DataFrame with "text") -> DataFrame(label, score)`.

    mlflow.pyfunc.load_model("models:/adaptflow-classifier@champion").predict(pd.DataFrame({"text": [...]}))

The weights travel as the `model_dir` artifact (safetensors, loaded with the same checks as everywhere else).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel


class TextClassifier(PythonModel):
    """Labels texts with the model in the `model_dir` artifact; settings come from the model config."""

    def load_context(self, context: Any) -> None:
        from tasks.models import load_classifier_dir, load_tokenizer

        model_dir = context.artifacts["model_dir"]
        settings = context.model_config or {}
        self.model = load_classifier_dir(model_dir)
        self.tokenizer = load_tokenizer(model_dir)
        self.max_length = int(settings.get("max_length", 128))
        self.batch_size = int(settings.get("batch_size", 64))
        self.precision = str(settings.get("precision", "auto"))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from tasks.devices import resolve_precision
        from tasks.errors import DataError
        from tasks.inference import predict

        if isinstance(model_input, pd.DataFrame):
            if "text" not in model_input.columns:
                raise DataError(f"model input has columns {list(model_input.columns)}; it needs a 'text' column")
            texts = model_input["text"].fillna("").astype(str).tolist()
        else:
            texts = [str(text) for text in model_input]
        predicted = predict(self.model, self.tokenizer, texts, self.max_length, self.batch_size,
                            resolve_precision(self.precision))
        return pd.DataFrame({"label": predicted.labels, "score": predicted.scores.astype(float)})
