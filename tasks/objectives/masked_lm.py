"""Target-domain masked language modelling during fine-tuning (the mixed objective of UDALM, NAACL 2021):
strategy `target_mlm`, off by default.

When to use it: not with MiniLM. Measured (BENCHMARKS.md rounds 2-3): at `mlm_weight` 1.0 the classifier collapses,
even after the head warm-up (books -> kitchen, seed 0: 0.6275 against 0.9100 source-only); at weight 0.1 it no longer
collapses but does not help (0.8950 against 0.9100). Try it only on an encoder pre-trained as a masked LM, and keep it
only if it measures better there.

The default foundation model ships no MLM head, so one is built the way BERT's is: a dense + GELU + LayerNorm
transform and a decoder whose weight *is* the word-embedding matrix (tied), plus a per-token bias. Each training step
adds `weight x` the masked-LM loss on a batch of unlabelled target texts to the classification loss, so the encoder
keeps modelling the target domain while it learns the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tasks.batching import SeededTextBatches
from tasks.devices import autocast, device_of, to_device
from tasks.objectives import TrainingContext, texts_digest


@dataclass(frozen=True)
class MaskedLMObjective:
    """What the auxiliary loss needs: the target texts, its weight and the share of tokens masked."""

    texts: tuple[str, ...]
    weight: float = 1.0
    probability: float = 0.15
    head_warmup_steps: int = 0

    def bind(self, context: TrainingContext) -> MaskedLMRun:
        return MaskedLMRun(self, context)

    def fingerprint(self) -> list[Any]:
        return ["target_mlm", self.weight, self.probability, self.head_warmup_steps, texts_digest(self.texts)]

    def describe(self) -> str:
        return f"target_mlm (masked-LM weight {self.weight:g} on {len(self.texts)} target texts)"


class MaskedLMRun:
    """The objective bound to one fine-tune: a tied head, the seeded masked batches, the head warm-up as setup."""

    def __init__(self, objective: MaskedLMObjective, context: TrainingContext):
        self.objective, self.model, self.precision = objective, context.model, context.precision
        self.head = build_mlm_head(context.model)
        self.heads = {"mlm_head": self.head}
        self.batches = MaskedBatches(context.tokenizer, objective, context.max_length, context.batch_size,
                                     context.seed)

    def setup(self) -> dict[str, Any]:
        steps = self.objective.head_warmup_steps
        if steps <= 0:
            return {}
        return {"mlm_head_warmup": warm_up_head(self.model, self.head, self.batches, steps, self.precision)}

    def loss(self, epoch: int, step: int, batch: np.ndarray, progress: float) -> torch.Tensor:
        return self.objective.weight * masked_lm_loss(self.model, self.head, self.batches.batch(epoch, step))

    def close(self) -> None:
        pass


class TiedMLMHead(nn.Module):
    """BERT's prediction head with the decoder tied to `embeddings` (same Parameter, not a copy)."""

    def __init__(self, hidden_size: int, embeddings: nn.Embedding, layer_norm_eps: float = 1e-12):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = nn.GELU()
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.decoder = nn.Linear(embeddings.embedding_dim, embeddings.num_embeddings, bias=False)
        self.decoder.weight = embeddings.weight
        self.bias = nn.Parameter(torch.zeros(embeddings.num_embeddings))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(self.activation(self.dense(hidden)))) + self.bias


def build_mlm_head(model) -> TiedMLMHead:
    """An MLM head for a transformers model, tied to its input embeddings."""
    config = model.config
    return TiedMLMHead(config.hidden_size, model.get_input_embeddings(), getattr(config, "layer_norm_eps", 1e-12))


class MaskedBatches(SeededTextBatches):
    """Seeded batches of masked target texts: `batch(epoch, step)` is the same on every run and every resume."""

    def __init__(self, tokenizer, objective: MaskedLMObjective, max_length: int, batch_size: int, seed: int):
        from transformers import DataCollatorForLanguageModeling

        super().__init__(tokenizer, objective.texts, max_length, batch_size, seed, "target_mlm")
        self._tokenizer, self._probability = tokenizer, objective.probability
        self._collator_class = DataCollatorForLanguageModeling
        self._collator_epoch: int | None = None

    def batch(self, epoch: int, step: int) -> dict[str, torch.Tensor]:
        """Masked `input_ids`, `attention_mask` and `labels` (-100 where not masked) for `step` of `epoch`."""
        picked = self.picked(epoch, step)
        if self._collator_epoch != epoch:  # the masks are seeded per epoch too
            self._collator = self._collator_class(self._tokenizer, mlm_probability=self._probability,
                                                  seed=self.epoch_seed(epoch))
            self._collator_epoch = epoch
        return self._collator([{"input_ids": ids} for ids in picked])


def masked_lm_loss(model, head: TiedMLMHead, batch: dict[str, torch.Tensor], encoder_grad: bool = True) -> torch.Tensor:
    """Cross-entropy of the head's predictions at the masked positions (on the model's device).

    With `encoder_grad=False` the encoder runs without a graph: only the head gets gradients."""
    batch = to_device(batch, device_of(model))
    with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
        hidden = model.base_model(input_ids=batch["input_ids"],
                                  attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"]
    masked = labels != -100
    if not masked.any():
        return hidden.sum() * 0.0
    logits = head(hidden[masked])
    return nn.functional.cross_entropy(logits.float(), labels[masked])


def warm_up_head(model, head: TiedMLMHead, batches: MaskedBatches, steps: int, precision: str = "fp32",
                 learning_rate: float = 1e-3) -> dict[str, float]:
    """Train only the head's own layers (not the tied decoder, not the encoder) for `steps` masked target batches.

    A fresh head predicts tokens at random: its loss starts near ln(vocabulary size), about 10 nats, and in the
    mixed objective its gradient outweighs the classification gradient under the shared gradient-norm clip.
    Warming the head up first, as linear probing before fine-tuning does, starts the mixed objective from a head
    that already models the target text. With MiniLM it is not enough (loss 11 -> 6 nats, the classifier still
    collapses: BENCHMARKS.md). Returns the first and last warm-up losses.
    """
    own = [parameter for name, parameter in head.named_parameters() if not name.startswith("decoder")]
    optimizer = torch.optim.AdamW(own, lr=learning_rate, weight_decay=0.0)
    device = device_of(model)
    was_training = model.training
    model.eval()  # no dropout in the encoder: the head learns the features the classifier will see
    losses = []
    for step in range(steps):
        with autocast(precision, device):
            loss = masked_lm_loss(model, head, batches.batch(0, step), encoder_grad=False)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    model.train(was_training)
    head.zero_grad(set_to_none=True)
    return {"steps": steps, "first_loss": losses[0], "last_loss": losses[-1]} if losses else {"steps": 0}
