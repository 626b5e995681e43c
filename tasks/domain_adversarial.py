"""Domain-adversarial training (DANN: Ganin et al., JMLR 2016) during fine-tuning.

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

import torch
from torch import nn

from tasks.batching import SeededTextBatches, pad_batch, pad_id_of
from tasks.devices import device_of, to_device


@dataclass(frozen=True)
class AdversarialObjective:
    """What the adversarial loss needs: the unlabelled target texts and the largest gradient-reversal scale."""

    texts: tuple[str, ...]
    weight: float = 0.1


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


def sentence_features(output) -> torch.Tensor:
    """The feature a sequence classifier reads from its encoder's output: the pooled output where the encoder has a
    pooler (BERT, MiniLM), else the first token's last hidden state (RoBERTa, DistilBERT)."""
    pooled = getattr(output, "pooler_output", None)
    return pooled if pooled is not None else output[0][:, 0]


class FeatureTap:
    """Keeps the sentence feature of the encoder's latest forward pass (a forward hook on `model.base_model`), so the
    task batch's features are read from the classification forward instead of computed twice."""

    def __init__(self, model):
        self.features: torch.Tensor | None = None
        self._handle = model.base_model.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output) -> None:
        self.features = sentence_features(output)

    def take(self) -> torch.Tensor:
        if self.features is None:
            raise RuntimeError("the encoder has not run since the last take()")
        features, self.features = self.features, None
        return features

    def close(self) -> None:
        self._handle.remove()


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
    task_features = tap.take()
    target_batch = to_device(target_batch, device_of(model))
    model.base_model(input_ids=target_batch["input_ids"], attention_mask=target_batch["attention_mask"])
    target_features = tap.take()
    features = torch.cat([task_features, target_features]).float()
    domains = torch.cat([task_domains.float(), torch.ones(len(target_features), device=features.device)])
    logits = head(reverse_gradient(features, scale))
    return nn.functional.binary_cross_entropy_with_logits(logits, domains)
