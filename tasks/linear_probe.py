"""LP-FT's first step: the classifier head starts from a linear probe instead of random weights.

Kumar et al. (ICLR 2022, "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution"): a
randomly initialised head sends large, noisy gradients into the pretrained encoder during the first steps of
fine-tuning and distorts the features the target domain needs; fitting the head first, as a logistic regression on
the frozen encoder's features, and only then fine-tuning everything keeps them. One inference pass over the training
texts (the features the head's last linear layer sees), one scikit-learn fit, and the fitted weights copied into
that layer. Only a head that the model did not have yet is fitted; a fine-tuned model that training continues from
keeps its own.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from tasks.batching import pad_batch, sorted_batches
from tasks.devices import autocast, to_device

log = logging.getLogger(__name__)
HEAD_MODULES = ("classifier", "pre_classifier", "score")  # transformers' names for a sequence classifier's head


def head_parameter_ids(model: torch.nn.Module) -> set[int]:
    """The ids of the parameters of `model`'s classification head (its `classifier`, `pre_classifier` or `score`
    child), found inside a ModuleDict of the model and objective heads as well."""
    inner = model["model"] if isinstance(model, torch.nn.ModuleDict) and "model" in model else model
    return {id(parameter) for name, child in inner.named_children() if name in HEAD_MODULES
            for parameter in child.parameters()}


def output_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The head's last linear layer: the one that produces the logits."""
    layers = [module for name, child in model.named_children() if name in HEAD_MODULES
              for module in child.modules() if isinstance(module, torch.nn.Linear)]
    if not layers or layers[-1].out_features != model.config.num_labels:
        raise ValueError(f"{type(model).__name__}: no classification head with {model.config.num_labels} outputs "
                         "to fit a linear probe to; set train.head_init: random")
    return layers[-1]


def probe_features(model: torch.nn.Module, sequences: list[list[int]], pad_id: int, device: torch.device,
                   precision: str, batch_size: int = 64) -> np.ndarray:
    """What the head's last layer sees for each sequence, with the model in eval mode (no dropout)."""
    layer, captured = output_layer(model), {}
    hook = layer.register_forward_hook(lambda _module, inputs, _output: captured.__setitem__("x", inputs[0]))
    features = np.zeros((len(sequences), layer.in_features), dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in sorted_batches(np.array([len(ids) for ids in sequences]), batch_size):
                with autocast(precision, device):
                    model(**to_device(pad_batch([sequences[i] for i in batch], pad_id), device))
                features[batch] = captured["x"].float().cpu().numpy()
    finally:
        hook.remove()
        model.train(was_training)
    return features


def fit_head(model: torch.nn.Module, sequences: list[list[int]], targets: torch.Tensor, weights: torch.Tensor,
             pad_id: int, device: torch.device, precision: str, c: float = 1.0) -> float:
    """Fit a (weighted, multinomial) logistic regression on the frozen features and copy it into the head's last
    layer; returns the probe's accuracy on the training texts."""
    from sklearn.linear_model import LogisticRegression

    features = probe_features(model, sequences, pad_id, device, precision)
    y = targets.cpu().numpy()
    n_labels = int(model.config.num_labels)
    if len(np.unique(y)) < 2:
        log.info("linear probe skipped: the training set has one label")
        return float("nan")
    probe = LogisticRegression(C=c, max_iter=2000).fit(features, y, sample_weight=weights.cpu().numpy())
    weight = np.zeros((n_labels, features.shape[1]), dtype=np.float32)
    bias = np.zeros(n_labels, dtype=np.float32)
    if len(probe.classes_) == 2:  # one row w, b for class 1: logits (-w/2, w/2) give the same probabilities
        weight[probe.classes_[0]], weight[probe.classes_[1]] = -probe.coef_[0] / 2, probe.coef_[0] / 2
        bias[probe.classes_[0]], bias[probe.classes_[1]] = -probe.intercept_[0] / 2, probe.intercept_[0] / 2
    else:
        weight[probe.classes_], bias[probe.classes_] = probe.coef_, probe.intercept_
        bias[np.setdiff1d(np.arange(n_labels), probe.classes_)] = -1e4  # a label with no training text
    layer = output_layer(model)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))
    accuracy = float(probe.score(features, y))
    log.info("linear probe: head fitted on %d training texts (training accuracy %.4f)", len(y), accuracy)
    return accuracy
