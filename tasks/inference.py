"""Batched inference: texts sorted by length, dynamic padding, `torch.inference_mode`, on the model's device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tasks.batching import pad_batch, pad_id_of, sorted_batches, tokenize
from tasks.devices import autocast, device_of, to_device


@dataclass(frozen=True)
class Predictions:
    """Per text: the predicted label, its probability, and the probabilities of every label."""

    labels: list[str]
    scores: np.ndarray
    probabilities: np.ndarray


def predict_probabilities(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64,
                          precision: str = "fp32") -> np.ndarray:
    """An (n_texts, n_labels) array of class probabilities, in the order of `texts`."""
    sequences = tokenize(tokenizer, texts, max_length)
    n_labels = int(model.config.num_labels)
    probabilities = np.zeros((len(sequences), n_labels), dtype=np.float32)
    if not sequences:
        return probabilities
    pad_id = pad_id_of(tokenizer)
    lengths = np.array([len(ids) for ids in sequences])
    was_training = model.training
    device = device_of(model)
    model.eval()
    with torch.inference_mode():
        for batch in sorted_batches(lengths, batch_size):
            inputs = to_device(pad_batch([sequences[i] for i in batch], pad_id), device)
            with autocast(precision, device):
                logits = model(**inputs).logits.float()
            probabilities[batch] = torch.softmax(logits, dim=-1).cpu().numpy()
    model.train(was_training)
    return probabilities


def predict(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64,
            precision: str = "fp32") -> Predictions:
    """Labels (from the model's `id2label`) and scores for `texts`."""
    probabilities = predict_probabilities(model, tokenizer, texts, max_length, batch_size, precision)
    ids = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, dtype=int)
    id2label = model.config.id2label
    return Predictions(
        labels=[id2label[int(i)] for i in ids],
        scores=probabilities.max(axis=1) if len(probabilities) else np.zeros(0, dtype=np.float32),
        probabilities=probabilities,
    )
