"""The few-shot path's first step: SetFit's contrastive tuning of the sentence encoder on the labelled target texts.

Tunstall et al. (2022, "Efficient Few-Shot Learning Without Prompts"): with a handful of labels a classifier head
on a pretrained encoder learns little from cross-entropy, but the encoder learns a lot from pairs of those texts:
two texts of the same label pulled together, two of different labels pushed apart (cosine-similarity loss). 50
labelled texts give ~1,250 pairs. The `setfit` package builds the pairs and trains the encoder
(`Trainer.train_embeddings`); its saved body is a sentence-transformers directory that pools by the mean, which
`tasks.models.load_classifier` then turns into a mean-pooled classifier (tasks.mean_pooling) whose head the engine
fits as a linear probe and fine-tunes as any other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path

from tasks.atomic import atomic_dir
from tasks.config import StrategyConfig
from tasks.errors import TrainingError
from tasks.models import check_model_dir, resolve_model_path

log = logging.getLogger(__name__)


def contrastive_key(texts: list[str], labels: list[str], model_name: str, max_length: int, config: StrategyConfig,
                    seed: int) -> str:
    """A short hash of everything that decides the tuned encoder's weights."""
    settings = {name: getattr(config, f"few_shot_{name}") for name in ("pairs", "epochs", "learning_rate", "batch_size")}
    payload = json.dumps([texts, labels, model_name, max_length, settings, seed], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def contrastive_tune(texts: list[str], labels: list[str], model_name: str, max_length: int,
                     config: StrategyConfig, seed: int, output_dir: Path, progress: bool = False) -> Path:
    """Tune `model_name`'s encoder on pairs of `texts` (same label: similar; different: dissimilar) and save it as
    a sentence-transformers model in `output_dir` (replaced whole, never half-written); returns `output_dir`."""
    from setfit import SetFitModel, Trainer, TrainingArguments

    names = sorted(set(labels))
    if len(names) < 2:
        raise TrainingError(f"the few-shot path needs labelled target texts of at least two labels; it has "
                            f"{len(texts)} text(s) of {names}; label more target texts")
    path = resolve_model_path(model_name)
    check_model_dir(path)
    # setfit says at INFO that the body has no model_head.pkl and that it starts a random head: only the body is used
    quiet = logging.getLogger("setfit.modeling")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        model = SetFitModel.from_pretrained(path, trust_remote_code=False)
    finally:
        quiet.setLevel(level)
    model.model_body.max_seq_length = max_length
    with tempfile.TemporaryDirectory(prefix="adaptflow-setfit-") as scratch:
        arguments = TrainingArguments(
            output_dir=scratch, batch_size=config.few_shot_batch_size, num_epochs=config.few_shot_epochs,
            num_iterations=config.few_shot_pairs, body_learning_rate=config.few_shot_learning_rate, seed=seed,
            max_length=max_length, report_to="none", show_progress_bar=progress, save_strategy="no")
        Trainer(model=model, args=arguments).train_embeddings(texts, [names.index(label) for label in labels], args=arguments)
    with atomic_dir(output_dir) as staged:
        model.model_body.save(str(staged))
    log.info("contrastive tuning: %d labelled target texts, encoder saved to %s", len(texts), output_dir)
    return output_dir

