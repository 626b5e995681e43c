"""A sequence classifier that reads the mean of the encoder's last hidden states, for sentence encoders trained so.

transformers' `BertForSequenceClassification` classifies from the [CLS] token through BERT's pooler. A sentence
encoder trained with mean pooling (all-MiniLM-L6-v2 and most sentence-transformers models) never tuned either: its
[CLS] features are weak until fine-tuning has moved the encoder, which short runs do not (`--set train.epochs=1` on
the embedded default: 0.564 target accuracy on its dev texts from [CLS], 0.820 from the mean; BENCHMARKS.md).
`MeanPooledForSequenceClassification` is the same encoder (any `AutoModel`) with the attention-masked mean of its
last hidden states, dropout and one linear layer on top.

It is a transformers model of its own `model_type` ("adaptflow-mean-pooled"), registered with `AutoConfig` and
`AutoModelForSequenceClassification` when this module is imported, so `from_pretrained`, `save_pretrained`, the
`text-classification` pipeline and the ONNX export treat it as any classifier. A program that loads a saved model
without importing this module gets transformers' "unrecognized model type" error rather than a model that silently
pools differently. This file imports nothing from adaptflow: the registered MLflow model ships it beside
`tasks/serving.py` (flows/registry.py).
"""

from __future__ import annotations

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

MODEL_TYPE = "adaptflow-mean-pooled"


class MeanPooledConfig(PreTrainedConfig):
    """The encoder's own config (`encoder`, a dict with its `model_type`) and the classifier's labels."""

    model_type = MODEL_TYPE

    def __init__(self, encoder: dict | PreTrainedConfig | None = None, **kwargs) -> None:
        self.encoder = encoder.to_dict() if isinstance(encoder, PreTrainedConfig) else dict(encoder or {})
        self.hidden_size = self.encoder.get("hidden_size")
        super().__init__(**kwargs)

    def encoder_config(self) -> PreTrainedConfig:
        settings = dict(self.encoder)
        return AutoConfig.for_model(settings.pop("model_type"), **settings)


class MeanPooledForSequenceClassification(PreTrainedModel):
    """encoder -> masked mean over tokens -> dropout -> linear: logits, as `XForSequenceClassification` returns."""

    config_class = MeanPooledConfig
    base_model_prefix = "encoder"  # `model.base_model` is the encoder, as for transformers' classifiers

    def __init__(self, config: MeanPooledConfig) -> None:
        super().__init__(config)
        encoder_config = config.encoder_config()
        self.encoder = AutoModel.from_config(encoder_config)
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None  # the [CLS] pooler is not read: no unused weights to train, save or sync
        dropout = getattr(encoder_config, "classifier_dropout", None)
        self.dropout = torch.nn.Dropout(dropout if dropout is not None else
                                        getattr(encoder_config, "hidden_dropout_prob", 0.1))
        self.classifier = torch.nn.Linear(encoder_config.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        if module is getattr(self, "classifier", None):
            torch.nn.init.normal_(module.weight, std=0.02)
            torch.nn.init.zeros_(module.bias)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.encoder.get_input_embeddings()

    def save_pretrained(self, *args, **kwargs):
        """Saved with the encoder's config as it runs now (settings changed on the live encoder, e.g.
        `train.attention_dropout`, are saved and come back on loading), not as it was when the model was built."""
        self.config.encoder = self.encoder.config.to_dict()
        return super().save_pretrained(*args, **kwargs)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **_: object) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        logits = self.classifier(self.dropout(mean_pool(hidden, attention_mask)))
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each sequence's hidden states over its real tokens (padding excluded)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def from_encoder(encoder: PreTrainedModel, id2label: dict[int, str]) -> MeanPooledForSequenceClassification:
    """A new mean-pooled classifier around a loaded foundation encoder (its weights kept, a new head)."""
    config = MeanPooledConfig(encoder=encoder.config, id2label=id2label,
                              label2id={label: index for index, label in id2label.items()})
    model = MeanPooledForSequenceClassification(config)
    weights = {name: value for name, value in encoder.state_dict().items() if not name.startswith("pooler.")}
    model.encoder.load_state_dict(weights)
    return model


AutoConfig.register(MODEL_TYPE, MeanPooledConfig, exist_ok=True)
AutoModelForSequenceClassification.register(MeanPooledConfig, MeanPooledForSequenceClassification, exist_ok=True)
