"""The fine-tuning engine: a plain, deterministic torch loop over a transformers sequence classifier.

AdamW with warm-up and linear decay, gradient accumulation, length-grouped batches with dynamic padding, per-sample
loss weights, early stopping on a target validation split, epoch checkpoints to resume from, and a stop on NaN/inf.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from tasks.atomic import atomic_dir
from tasks.batching import make_batches, pad_batch, pad_id_of, tokenize
from tasks.checkpoints import (
    latest_checkpoint,
    load_weights,
    restore_checkpoint,
    save_checkpoint,
    save_weights,
)
from tasks.config import TrainConfig
from tasks.devices import autocast, device_of, resolve_device, resolve_precision, to_device
from tasks.domain_adversarial import (
    AdversarialObjective,
    DomainClassifier,
    FeatureTap,
    TargetBatches,
    domain_adversarial_loss,
    reversal_scale,
)
from tasks.errors import TrainingError
from tasks.evaluation import compute_metrics
from tasks.inference import predict
from tasks.language_modeling import (
    MaskedBatches,
    MaskedLMObjective,
    build_mlm_head,
    masked_lm_loss,
    warm_up_head,
)
from tasks.models import load_classifier, load_tokenizer

log = logging.getLogger(__name__)
RECORD_FILE = "adaptflow-training.json"  # beside the saved model: which job produced it, and its history
EpochHook = Callable[[int, dict[str, Any]], None]
AuxiliaryLoss = Callable[[int, np.ndarray], torch.Tensor]  # (step, the batch's row indices) -> a further loss


@dataclass(frozen=True)
class TrainResult:
    """What a fine-tune produced: the saved model dir and the per-epoch history."""

    model_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int
    stopped_early: bool
    resumed_from_epoch: int | None = None
    n_train: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def fine_tune(train: pd.DataFrame, validation: pd.DataFrame, labels: tuple[str, ...], model_name: str,
              max_length: int, config: TrainConfig, output_dir: Path, checkpoint_root: Path,
              progress: bool = True, on_epoch_end: EpochHook | None = None,
              mlm: MaskedLMObjective | None = None,
              adversarial: AdversarialObjective | None = None) -> TrainResult:
    """Fine-tune `model_name` on `train` (`text`, `label`, optional `weight`) and save it to `output_dir`.

    `validation` (may be empty) drives early stopping and picks the best epoch when it holds at least
    `config.min_validation_size` texts; a smaller one is only scored each epoch. Checkpoints go under
    `checkpoint_root/<hash of model, data and settings>`, so a re-run of the same job resumes where it stopped.
    With `mlm`, every step also adds the masked-LM loss on a batch of its (target) texts, through a head tied to
    the word embeddings; the head is trained and checkpointed with the model but not saved with it. With
    `adversarial`, a domain classifier learns to tell the batch's rows (target where `train["domain"]` says so, else
    source) from a batch of its unlabelled target texts, through a gradient reversal into the encoder (DANN); it too
    is checkpointed but not saved.
    """
    key = run_key(train, validation, labels, model_name, max_length, config, mlm, adversarial)
    done = completed_run(output_dir, key) if config.resume else None
    if done is not None:
        log.info("%s already holds this exact fine-tune (run %s); reusing it", output_dir, key)
        return done
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(model_name)
    model = load_classifier(model_name, labels)
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    heads: dict[str, torch.nn.Module] = {}
    masked = target_batches = tap = None
    if mlm is not None:
        heads["mlm_head"] = build_mlm_head(model)
        masked = MaskedBatches(tokenizer, mlm, max_length, config.batch_size, config.seed)
    if adversarial is not None:
        heads["domain_head"] = DomainClassifier(model.config.hidden_size)
        target_batches = TargetBatches(tokenizer, adversarial.texts, max_length, config.batch_size, config.seed)
    trainable = torch.nn.ModuleDict({"model": model, **heads}) if heads else model
    trainable.to(device)
    label_ids = {label: index for index, label in enumerate(labels)}
    sequences = tokenize(tokenizer, train["text"].tolist(), max_length)
    targets = torch.tensor([label_ids[label] for label in train["label"]], dtype=torch.long, device=device)
    weights = _normalised_weights(train).to(device)
    domains = torch.tensor((train["domain"] == "target").to_numpy() if "domain" in train.columns
                           else np.zeros(len(train), dtype=bool), device=device)
    lengths = np.array([len(ids) for ids in sequences])
    steps_per_epoch = math.ceil(math.ceil(len(sequences) / config.batch_size) / config.gradient_accumulation_steps)
    optimizer, scheduler = make_optimizer(trainable, config, steps_per_epoch * config.epochs)
    run_dir = checkpoint_root / key

    state: dict[str, Any] = {"history": [], "best_epoch": 0, "best_score": None, "bad_epochs": 0}
    resumed = None
    checkpoint = latest_checkpoint(run_dir) if config.resume else None
    if checkpoint is not None:
        restore_checkpoint(checkpoint, trainable, optimizer, scheduler)
        state = {key: checkpoint.state[key] for key in state}
        resumed = checkpoint.epoch
        log.info("resuming from %s (epoch %d of %d)", checkpoint.path, resumed, config.epochs)
    pad_id = pad_id_of(tokenizer)
    stopped_early = _should_stop(state, config)
    extra: dict[str, Any] = {}
    if masked is not None and resumed is None and mlm.head_warmup_steps > 0:
        extra["mlm_head_warmup"] = warm_up_head(model, trainable["mlm_head"], masked, mlm.head_warmup_steps,
                                                resolve_precision(config.precision, device))

    for epoch in range((resumed or 0) + 1, config.epochs + 1):
        if stopped_early:
            break
        batches = make_batches(lengths, config.batch_size, config.seed + epoch, config.group_by_length)
        auxiliary = None
        if heads:
            if adversarial is not None and tap is None:
                tap = FeatureTap(model)
            auxiliary = _auxiliary_loss(model, trainable, epoch, len(batches), config.epochs, domains, mlm, masked,
                                        adversarial, target_batches, tap)
        loss = train_epoch(model, optimizer, scheduler, sequences, targets, weights, batches, pad_id, config,
                           f"epoch {epoch}/{config.epochs}", progress, auxiliary)
        row: dict[str, Any] = {"epoch": epoch, "train_loss": loss, "lr": scheduler.get_last_lr()[0],
                               "optimizer_steps": int(scheduler.last_epoch)}
        row.update(_validate(model, tokenizer, validation, labels, max_length,
                             resolve_precision(config.precision, device)))
        if len(validation) >= config.min_validation_size:  # a smaller split only reports
            _track_best(state, row, model, run_dir)
        state["history"].append(row)
        save_checkpoint(run_dir, epoch, trainable, optimizer, scheduler, state)
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        stopped_early = _should_stop(state, config) and epoch < config.epochs

    if tap is not None:
        tap.close()
    if state["best_score"] is not None and (run_dir / "best").is_dir():
        load_weights(model, run_dir / "best")
    best = state["best_epoch"] or (state["history"][-1]["epoch"] if state["history"] else 0)
    record = {"run_key": key, "history": state["history"], "best_epoch": best, "stopped_early": stopped_early,
              "n_train": len(train), "extra": extra}
    _save_model(model, tokenizer, output_dir, record)
    if not config.keep_checkpoints:
        shutil.rmtree(run_dir, ignore_errors=True)
    return TrainResult(output_dir, state["history"], best, stopped_early, resumed, len(train), extra)


def _auxiliary_loss(model, trainable, epoch: int, batches_per_epoch: int, epochs: int, domains: torch.Tensor,
                    mlm: MaskedLMObjective | None, masked: MaskedBatches | None,
                    adversarial: AdversarialObjective | None, target_batches: TargetBatches | None,
                    tap: FeatureTap | None) -> AuxiliaryLoss:
    """The further losses of one epoch's steps: the domain-adversarial loss (first: it reads the task batch's
    features from the classification forward) and the masked-LM loss, summed."""

    def loss(step: int, batch: np.ndarray) -> torch.Tensor:
        total = None
        if adversarial is not None:
            done = ((epoch - 1) * batches_per_epoch + step + 1) / (epochs * batches_per_epoch)
            total = domain_adversarial_loss(model, trainable["domain_head"], tap, domains[batch],
                                            target_batches.batch(epoch, step),
                                            reversal_scale(done, adversarial.weight))
        if mlm is not None:
            masked_loss = mlm.weight * masked_lm_loss(model, trainable["mlm_head"], masked.batch(epoch, step))
            total = masked_loss if total is None else total + masked_loss
        return total

    return loss


def completed_run(output_dir: Path, key: str) -> TrainResult | None:
    """The finished fine-tune saved in `output_dir` when it was this exact job (same run key), else None.

    A re-run after a crash then skips work that already completed: the first self-training round, say, when the
    second was interrupted."""
    try:
        record = json.loads((output_dir / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("run_key") != key:
        return None
    return TrainResult(output_dir, record["history"], record["best_epoch"], record["stopped_early"], None,
                       record["n_train"], {**record.get("extra", {}), "reused": True})


def run_key(train: pd.DataFrame, validation: pd.DataFrame, labels: tuple[str, ...], model_name: str,
            max_length: int, config: TrainConfig, mlm: MaskedLMObjective | None = None,
            adversarial: AdversarialObjective | None = None) -> str:
    """A short hash of everything that decides the trained weights: checkpoints are only reused for the same job."""
    digest = hashlib.sha256()
    settings = config.model_dump(mode="json", exclude={"resume", "keep_checkpoints", "device"})
    auxiliary = None if mlm is None else [mlm.weight, mlm.probability, mlm.head_warmup_steps,
                                          hashlib.sha256("\x00".join(mlm.texts).encode()).hexdigest()]
    if adversarial is not None:  # appended only when set: the keys of runs without it stay as they were
        auxiliary = [auxiliary, "adversarial", adversarial.weight,
                     hashlib.sha256("\x00".join(adversarial.texts).encode()).hexdigest()]
    digest.update(json.dumps([model_name, max_length, list(labels), settings, auxiliary], sort_keys=True).encode())
    for frame in (train, validation):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _normalised_weights(train: pd.DataFrame) -> torch.Tensor:
    """Per-sample loss weights scaled to mean 1 (all ones when the frame has no `weight` column)."""
    if "weight" not in train.columns:
        return torch.ones(len(train))
    weights = torch.tensor(train["weight"].to_numpy(dtype=np.float32))
    if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise TrainingError("sample weights must be finite, non-negative and not all zero")
    return weights / weights.mean()


def make_optimizer(model, config: TrainConfig, total_steps: int):
    from transformers import get_linear_schedule_with_warmup

    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 or "LayerNorm" in name else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    warmup = round(config.warmup_ratio * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, max(total_steps, 1))


def train_epoch(model, optimizer, scheduler, sequences, targets, weights, batches, pad_id, config: TrainConfig,
                description: str, progress: bool, auxiliary: AuxiliaryLoss | None = None) -> float:
    """One pass over `batches` (index arrays): dynamic padding, autocast, weighted loss, accumulation; mean loss.

    `auxiliary(step, batch)`, when given, is a further loss added at each step (the target masked-LM and the
    domain-adversarial objectives).
    """
    model.train()
    device = device_of(model)
    precision = resolve_precision(config.precision, device)
    total, count = 0.0, 0
    accumulate = config.gradient_accumulation_steps
    bar = tqdm(batches, desc=description, unit="batch", disable=not progress, leave=False)
    for step, batch in enumerate(bar, start=1):
        inputs = to_device(pad_batch([sequences[i] for i in batch], pad_id), device)
        with autocast(precision, device):
            logits = model(**inputs).logits
            extra = auxiliary(step - 1, batch) if auxiliary is not None else None
        per_sample = torch.nn.functional.cross_entropy(logits.float(), targets[batch], reduction="none")
        loss = (per_sample * weights[batch]).mean()
        if extra is not None:
            loss = loss + extra
        if not torch.isfinite(loss):
            raise TrainingError(f"training loss became {loss.item()} at {description}, batch {step}; lower "
                                f"train.learning_rate (now {config.learning_rate}) or check the data")
        (loss / accumulate).backward()
        if step % accumulate == 0 or step == len(batches):
            torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]],
                                           config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        total += loss.item() * len(batch)
        count += len(batch)
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


def _validate(model, tokenizer, validation: pd.DataFrame, labels, max_length: int, precision: str) -> dict[str, Any]:
    if validation.empty:
        return {"val_accuracy": None, "val_macro_f1": None}
    predicted = predict(model, tokenizer, validation["text"].tolist(), max_length, precision=precision)
    metrics = compute_metrics(validation["label"].tolist(), predicted.labels, labels)
    return {"val_accuracy": metrics["accuracy"], "val_macro_f1": metrics["macro_f1"]}


def _track_best(state: dict[str, Any], row: dict[str, Any], model, run_dir: Path) -> None:
    score = row["val_macro_f1"]
    if score is None:
        return
    # on a tie the later epoch wins: it has seen more data at a lower learning rate, and a small validation split
    # (10 texts from 50 labelled) ties often; keeping the earlier epoch then throws away the last epoch's training
    if state["best_score"] is None or score >= state["best_score"]:
        state.update(best_score=score, best_epoch=row["epoch"], bad_epochs=0)
        save_weights(model, run_dir / "best")
    else:
        state["bad_epochs"] += 1


def _should_stop(state: dict[str, Any], config: TrainConfig) -> bool:
    return config.early_stopping_patience > 0 and state["bad_epochs"] >= config.early_stopping_patience


def _save_model(model, tokenizer, output_dir: Path, record: dict[str, Any]) -> None:
    with atomic_dir(output_dir) as temp:
        model.to("cpu").save_pretrained(temp)
        tokenizer.save_pretrained(temp)
        (temp / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")
