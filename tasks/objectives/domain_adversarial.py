"""Domain-adversarial training (DANN: Ganin et al., JMLR 2016) during fine-tuning: strategy `domain_adversarial`,
off by default.

When to use it: not with MiniLM on these pairs. Measured (BENCHMARKS.md round 5, books -> kitchen, seed 0): 0.8900 at
`adversarial_weight` 0.1 and 0.8925 at 1.0, against 0.9075 for the default shift branch and 0.9100 for source-only;
at weight 1 fewer target texts reach the pseudo-label confidence (524 of 1,545 against 800). Keep it off unless it
measures better on your model and data.

A small domain classifier reads the encoder's sentence feature (what the task classifier reads: the pooled output,
else the first token's hidden state) and learns to tell source texts from target texts. Between the encoder and it
sits a gradient-reversal layer: the forward pass is the identity, the backward pass multiplies the gradient by
-lambda. So while the domain classifier gets better at telling the domains apart, the encoder is pushed towards
features that it cannot: features shared by both domains, on which the task classifier trained on the source
transfers to the target. lambda ramps up from 0 as training proceeds (2 / (1 + exp(-10 p)) - 1, p the share of
training done, as in the paper), times the configured weight, so the early, noisy domain classifier does not
disturb the encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tasks.batching import SeededTextBatches, pad_batch, pad_id_of
from tasks.devices import device_of, to_device
from tasks.mean_pooling import MODEL_TYPE, mean_pool
from tasks.objectives import TrainingContext, texts_digest


@dataclass(frozen=True)
class AdversarialObjective:
    """What the adversarial loss needs: the unlabelled target texts and the largest gradient-reversal scale."""

    texts: tuple[str, ...]
    weight: float = 0.1

    def bind(self, context: TrainingContext) -> AdversarialRun:
        return AdversarialRun(self, context)

    def fingerprint(self) -> list[Any]:
        return ["domain_adversarial", self.weight, texts_digest(self.texts)]

    def describe(self) -> str:
        return (f"domain_adversarial (gradient reversal up to {self.weight:g} against a domain classifier, "
                f"{len(self.texts)} unlabelled target texts)")


class AdversarialRun:
    """The objective bound to one fine-tune: the domain classifier, a feature tap on the encoder, the training rows'
    domains (target where `train["domain"]` says so, else source) and the seeded target batches."""

    def __init__(self, objective: AdversarialObjective, context: TrainingContext):
        self.objective, self.model = objective, context.model
        self.head = DomainClassifier(context.model.config.hidden_size)
        self.heads = {"domain_head": self.head}
        train = context.train
        self.domains = torch.tensor((train["domain"] == "target").to_numpy() if "domain" in train.columns
                                    else np.zeros(len(train), dtype=bool), device=context.device)
        self.targets = TargetBatches(context.tokenizer, objective.texts, context.max_length, context.batch_size,
                                     context.seed)
        self.tap = FeatureTap(context.model)

    def setup(self) -> dict[str, Any]:
        return {}

    def loss(self, epoch: int, step: int, batch: np.ndarray, progress: float) -> torch.Tensor:
        return domain_adversarial_loss(self.model, self.head, self.tap, self.domains[batch],
                                       self.targets.batch(epoch, step),
                                       reversal_scale(progress, self.objective.weight))

    def close(self) -> None:
        self.tap.close()


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return features.view_as(features)

    @staticmethod
    def backward(ctx, gradient: torch.Tensor):
        return -ctx.scale * gradient, None


def reverse_gradient(features: torch.Tensor, scale: float) -> torch.Tensor:
    """The identity forward; backward, the gradient times `-scale`."""
    return _ReverseGradient.apply(features, scale)


def reversal_scale(progress: float, weight: float) -> float:
    """DANN's schedule: 0 at the start of training, close to `weight` by its end (`progress` in [0, 1])."""
    return weight * (2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0)


class DomainClassifier(nn.Module):
    """Sentence feature -> logit of 'target domain' (one hidden layer, as in DANN)."""

    def __init__(self, hidden_size: int, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Dropout(dropout),
                                    nn.Linear(hidden_size, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features).squeeze(-1)


def sentence_features(output, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The feature a sequence classifier reads from its encoder's output: with `attention_mask` (a mean-pooled
    classifier, tasks.mean_pooling) the mean of the token states; else the pooled output where the encoder has a
    pooler (BERT), else the first token's last hidden state (RoBERTa, DistilBERT)."""
    if attention_mask is not None:
        return mean_pool(output[0], attention_mask)
    pooled = getattr(output, "pooler_output", None)
    return pooled if pooled is not None else output[0][:, 0]


class FeatureTap:
    """Keeps the sentence feature of the encoder's latest forward pass (a forward hook on `model.base_model`), and that
    of the latest classification forward (a hook on `model` itself), so the task batch's features are read from the
    classification forward instead of computed twice, even after another objective ran the encoder alone."""

    def __init__(self, model):
        self.features: torch.Tensor | None = None
        self.task_features: torch.Tensor | None = None
        self.mean = getattr(model.config, "model_type", None) == MODEL_TYPE  # the class, whichever copy loaded it
        self._handles = [model.base_model.register_forward_hook(self._keep, with_kwargs=True),
                         model.register_forward_hook(self._keep_task)]

    def _keep(self, module, args, kwargs, output) -> None:
        self.features = sentence_features(output, kwargs["attention_mask"] if self.mean else None)

    def _keep_task(self, module, inputs, output) -> None:
        self.task_features = self.features

    def take(self) -> torch.Tensor:
        """The features of the encoder's latest forward, once."""
        if self.features is None:
            raise RuntimeError("the encoder has not run since the last take()")
        features, self.features = self.features, None
        return features

    def take_task(self) -> torch.Tensor:
        """The encoder features of the latest classification forward, once."""
        if self.task_features is None:
            raise RuntimeError("the classifier has not run since the last take_task()")
        features, self.task_features = self.task_features, None
        return features

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


class TargetBatches(SeededTextBatches):
    """Seeded batches of unlabelled target texts: `batch(epoch, step)` is the same on every run and every resume."""

    seed_offset = 7  # not the masked-LM order when both objectives run

    def __init__(self, tokenizer, texts: tuple[str, ...], max_length: int, batch_size: int, seed: int):
        super().__init__(tokenizer, texts, max_length, batch_size, seed, "domain_adversarial")
        self.pad_id = pad_id_of(tokenizer)

    def batch(self, epoch: int, step: int) -> dict[str, torch.Tensor]:
        return pad_batch(self.picked(epoch, step), self.pad_id)


def domain_adversarial_loss(model, head: DomainClassifier, tap: FeatureTap, task_domains: torch.Tensor,
                            target_batch: dict[str, torch.Tensor], scale: float) -> torch.Tensor:
    """Binary cross-entropy of `head` on the task batch's features (read from `tap`; `task_domains` 1 for target
    rows) and on a batch of unlabelled target texts (all 1), through a gradient reversal of `scale`."""
    task_features = tap.take_task()
    target_batch = to_device(target_batch, device_of(model))
    model.base_model(input_ids=target_batch["input_ids"], attention_mask=target_batch["attention_mask"])
    target_features = tap.take()
    features = torch.cat([task_features, target_features]).float()
    domains = torch.cat([task_domains.float(), torch.ones(len(target_features), device=features.device)])
    logits = head(reverse_gradient(features, scale))
    return nn.functional.binary_cross_entropy_with_logits(logits, domains)
