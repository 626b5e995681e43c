"""Score the adapted model and the source-only baseline on the target test set (and the source hold-out)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from flows.layout import PREDICTION_SPLITS, layout_of, read_labels, read_role
from tasks.atomic import write_csv, write_json
from tasks.config import AdaptflowConfig
from tasks.devices import placement
from tasks.errors import DataError
from tasks.evaluation import compute_metrics, gain, plot_confusion_matrix, plot_training_curves
from tasks.inference import predict
from tasks.results import EvaluationReport, TrainSummary, ValidationSummary


def evaluate(config: AdaptflowConfig, validation: ValidationSummary, adapted: TrainSummary,
             baseline: TrainSummary | None = None) -> EvaluationReport:
    """Metrics of each model on the target test set, the adapted model's predictions (of the target test set and
    of the source hold-out, one file, a `split` column telling them apart), confusion matrices and training curves;
    both models labelled by the `inference.backend` (tasks.onnx_inference)."""
    from tasks.models import load_tokenizer
    from tasks.onnx_inference import load_for_inference, resolve_backend

    layout = layout_of(config)
    labels, test, source_test = read_labels(layout), read_role(layout, "target_test"), read_role(layout, "source_test")
    device, precision = placement(config.train)
    backend = resolve_backend(config.inference.backend, device, precision)
    results: dict[str, dict[str, Any]] = {}
    for trained in (adapted, baseline):
        if trained is None:
            continue
        model_dir = layout.model(trained.role)
        if not model_dir.is_dir():
            raise DataError(f"{model_dir}: no trained model; run the train stages first")
        model = load_for_inference(model_dir, labels, backend, config.inference.cache_dir, device,
                                   config.inference.int8_recheck)
        tokenizer = load_tokenizer(str(model_dir))

        frames = dict(zip(PREDICTION_SPLITS, (test, source_test), strict=True))
        scored = {role: predict(model, tokenizer, frame["text"].tolist(), config.model.max_length,
                                config.evaluation.batch_size, precision)
                  for role, frame in frames.items() if not frame.empty}
        results[trained.role] = compute_metrics(test["label"].tolist(), scored["target_test"].labels, labels)
        if "source_test" in scored:
            results[trained.role]["source"] = compute_metrics(source_test["label"].tolist(),
                                                              scored["source_test"].labels, labels)
        if trained.role == "adapted":  # what the registry's gate scores the champion on
            write_csv(layout.predictions, pd.concat(
                [frame.assign(predicted=scored[role].labels, score=scored[role].scores.round(4), split=role)
                 for role, frame in frames.items() if role in scored],
                ignore_index=True))
        plot_confusion_matrix(results[trained.role]["confusion_matrix"], list(labels),
                              f"{trained.role} on target test", layout.reports / f"confusion_matrix_{trained.role}.png")
    plot_training_curves({trained.role: trained.history for trained in (adapted, baseline) if trained is not None},
                         layout.reports / "training_curves.png")
    report = EvaluationReport(results["adapted"], str(layout.model("adapted")), results.get("baseline"),
                              gain(results["adapted"], results.get("baseline")), backend)
    write_json(layout.metrics, report.to_dict())
    return report
