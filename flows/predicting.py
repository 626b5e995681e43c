"""`adaptflow predict`: label the rows of a file with a trained model; writes the rows plus `label` and `score`."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from tasks.atomic import safe_csv_frame, write_csv
from tasks.config import AdaptflowConfig
from tasks.devices import placement
from tasks.inference import predict
from tasks.models import load_tokenizer
from tasks.onnx_inference import load_for_inference, resolve_backend
from tasks.roles import to_examples
from tasks.tables import read_table


def predict_file(model_uri: str, input_path: Path, output_path: Path | None, config: AdaptflowConfig) -> int:
    """Label every row of `input_path`; write CSV to `output_path` (or stdout). Returns the number of rows."""
    raw = read_table(input_path, config.data.format, config.data.delimiter)
    configured = [c for c in config.data.text_columns or [] if c in raw.columns]  # those present; else detected
    texts = to_examples(raw, input_path, configured or None, None, config.data.text_separator)["text"].tolist()
    if model_uri.startswith(("models:/", "runs:/")):
        from mlflow.exceptions import MlflowException

        from flows.mlflow_store import resolve_uri
        from flows.registry import load_registered
        from tasks.errors import DataError

        model = load_registered(model_uri, resolve_uri(config.tracking))
        try:
            served = model.predict(pd.DataFrame({"text": texts}))
        except MlflowException as refused:  # the served model names the row (0 = the first data row)
            raise DataError(f"{input_path}: {refused.message.splitlines()[-1]} (rows counted from 0, "
                            f"without the header)") from None
        labels, scores = served["label"].tolist(), served["score"].to_numpy()
    else:
        device, precision = placement(config.train)
        backend = resolve_backend(config.inference.backend, device, precision)
        model = load_for_inference(Path(model_uri), None, backend, config.inference.cache_dir, device,
                                   config.inference.int8_recheck)
        predicted = predict(model, load_tokenizer(model_uri), texts, config.model.max_length,
                            config.evaluation.batch_size, precision)
        labels, scores = predicted.labels, predicted.scores
    labelled = raw.assign(label=labels, score=scores.round(6))
    if output_path is None:
        safe_csv_frame(labelled).to_csv(sys.stdout, index=False)
    else:
        write_csv(output_path, labelled)
    return len(labelled)
