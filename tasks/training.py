"""The fine-tuning engine: a plain, deterministic torch loop over a transformers sequence classifier.

AdamW with warm-up and linear decay, gradient accumulation, length-grouped batches with dynamic padding, per-sample
loss weights, early stopping on a target validation split, epoch checkpoints to resume from, and a stop on NaN/inf.
Auxiliary objectives (tasks/objectives/) join through one protocol; the loop knows none by name.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tasks.batching import make_batches, pad_batch, pad_id_of, token_batches, tokenize
from tasks.checkpoints import latest_checkpoint, load_weights, restore_checkpoint, save_checkpoint
from tasks.config import TrainConfig
from tasks.data_parallel import Group, device_for, launch
from tasks.devices import autocast, device_of, resolve_device, resolve_precision, to_device
from tasks.early_stopping import fresh_state, should_stop, track_best
from tasks.errors import TrainingError
from tasks.evaluation import compute_metrics
from tasks.inference import predict
from tasks.linear_probe import fit_head
from tasks.models import (
    freeze_lowest_layers,
    load_classifier,
    load_tokenizer,
    new_head,
    set_attention_dropout,
    training_attention,
)
from tasks.objectives import AuxiliaryLoss, Objective, ObjectiveRun, TrainingContext, combined_loss, heads_of
from tasks.optimizer import make_optimizer, normalised_weights
from tasks.progress import EpochProgress
from tasks.run_records import RECORD_FILE, TrainResult, completed_run, run_key, save_trained_model

__all__ = ["RECORD_FILE", "TrainResult", "completed_run", "fine_tune", "make_optimizer", "run_key", "train_epoch"]
log = logging.getLogger(__name__)
EpochHook = Callable[[int, dict[str, Any]], None]


def fine_tune(train: pd.DataFrame, validation: pd.DataFrame, labels: tuple[str, ...], model_name: str,
              max_length: int, config: TrainConfig, output_dir: Path, checkpoint_root: Path,
              progress: bool = True, on_epoch_end: EpochHook | None = None,
              objectives: Sequence[Objective] = (), on_progress: Callable[[float], None] | None = None,
              group: Group | None = None) -> TrainResult:
    """Fine-tune `model_name` on `train` (`text`, `label`, optional `weight`) and save it to `output_dir`.

    `validation` (may be empty) drives early stopping and picks the best epoch when it holds at least
    `config.min_validation_size` texts; a smaller one is only scored each epoch. Checkpoints go under
    `checkpoint_root/<hash of model, data and settings>`, so a re-run of the same job resumes where it stopped.
    Each of `objectives` is bound to the model for this run: its heads are trained and checkpointed with the model
    but not saved with it, its setup runs before the first epoch of a fresh run, and its loss is added at every
    step, in the order given. Progress is shown as `tasks.progress` says, and `on_progress(share of the whole
    fine-tune done)` is called at each ~10 % of an epoch. Each epoch's history row holds its optimizer steps
    (`steps`: global step, loss, learning rate). With `config.processes` > 1 the fine-tune runs data-parallel in
    that many processes (tasks.data_parallel, `group` being this process's place there); the hooks run here after.
    """
    objectives = tuple(objectives)
    key = run_key(train, validation, labels, model_name, max_length, config, objectives)
    done = completed_run(output_dir, key) if config.resume else None
    if done is not None:
        log.info("%s already holds this exact fine-tune (run %s); reusing it", output_dir, key)
        return done
    device = resolve_device(config.device)
    if config.processes > 1 and group is None:
        return _in_processes(train, validation, labels, model_name, max_length, config, output_dir, checkpoint_root,
                             progress, on_epoch_end, objectives, on_progress, device)
    group = group or Group()
    device = device_for(device, group)
    precision = resolve_precision(config.precision, device)
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(model_name)
    model = load_classifier(model_name, labels, config.head_pooling)
    if config.head_init == "probe" and group.writes and new_head(model_name) and \
            latest_checkpoint(checkpoint_root / key) is None:  # a resumed run restores its head
        fit_head(model.to(device), tokenize(tokenizer, train["text"].tolist(), max_length),
                 torch.tensor([labels.index(label) for label in train["label"]]), normalised_weights(train),
                 pad_id_of(tokenizer), device, precision)
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    freeze_lowest_layers(model, config.freeze_layers)
    set_attention_dropout(model, config.attention_dropout)
    context = TrainingContext(model, tokenizer, train, max_length, config.batch_size, config.seed, device, precision)
    with ExitStack() as stack:
        runs = [_bind(objective, context, stack) for objective in objectives]
        return _train(context, validation, labels, config, output_dir, checkpoint_root / key, key, progress,
                      on_epoch_end, runs, on_progress, group)


def _in_processes(train, validation, labels, model_name, max_length, config, output_dir, checkpoint_root, progress,
                  on_epoch_end, objectives, on_progress, device) -> TrainResult:
    """`fine_tune` in `config.processes` processes; its hooks called here once they finish."""
    if objectives:
        raise TrainingError(f"train.processes is {config.processes}, but the training-time objectives "
                            f"({', '.join(type(o).__name__ for o in objectives)}) train in one process only; set "
                            "train.processes: 1 or leave target_mlm/domain_adversarial out of strategy.shift_strategies")
    result = launch(fine_tune, (train, validation, labels, model_name, max_length, config, output_dir,
                                checkpoint_root), {}, config.processes, device, progress)
    for row in result.history if on_epoch_end is not None else ():
        on_epoch_end(row["epoch"], row)
    if on_progress is not None:
        on_progress(1.0)
    return result


def _bind(objective: Objective, context: TrainingContext, stack: ExitStack) -> ObjectiveRun:
    run = objective.bind(context)
    stack.callback(run.close)
    return run


def _train(context: TrainingContext, validation: pd.DataFrame, labels: tuple[str, ...], config: TrainConfig,
           output_dir: Path, run_dir: Path, key: str, progress: bool, on_epoch_end: EpochHook | None,
           runs: list[ObjectiveRun], on_progress: Callable[[float], None] | None, group: Group) -> TrainResult | None:
    """The epochs of one fine-tune, from its checkpoint when there is one, then the saved model (rank 0's)."""
    model, tokenizer, train = context.model, context.tokenizer, context.train
    heads = heads_of(runs)
    trainable = torch.nn.ModuleDict({"model": model, **heads}) if heads else model
    trainable.to(context.device)
    group.same_start(trainable)
    label_ids = {label: index for index, label in enumerate(labels)}
    sequences = tokenize(tokenizer, train["text"].tolist(), context.max_length)
    targets = torch.tensor([label_ids[label] for label in train["label"]], dtype=torch.long, device=context.device)
    weights = normalised_weights(train).to(context.device)
    lengths = np.array([len(ids) for ids in sequences])
    plan = {epoch: epoch_batches(lengths, config, epoch) for epoch in range(1, config.epochs + 1)}
    optimizer, scheduler = make_optimizer(trainable, config, sum(
        math.ceil(len(batches) / config.gradient_accumulation_steps) for batches in plan.values()))

    state, resumed = fresh_state(), None
    checkpoint = latest_checkpoint(run_dir) if config.resume else None
    if checkpoint is not None:
        restore_checkpoint(checkpoint, trainable, optimizer, scheduler)
        state = {name: checkpoint.state[name] for name in state}
        resumed = checkpoint.epoch
        log.info("resuming from %s (epoch %d of %d)", checkpoint.path, resumed, config.epochs)
    pad_id = pad_id_of(tokenizer)
    stopped_early = should_stop(state, config)
    extra: dict[str, Any] = {}
    if resumed is None:
        for run in runs:
            extra.update(run.setup())

    for epoch in range((resumed or 0) + 1, config.epochs + 1):
        if stopped_early:
            break
        batches = plan[epoch]
        auxiliary = combined_loss(runs, epoch, len(batches), config.epochs) if runs else None
        steps: list[dict[str, Any]] = []
        tick = None if on_progress is None else \
            (lambda share, done=epoch - 1: on_progress((done + share) / config.epochs))
        with training_attention(model, config.attention, context.device):
            loss = train_epoch(model, optimizer, scheduler, sequences, targets, weights, batches, pad_id, config,
                               f"epoch {epoch}/{config.epochs}", progress, auxiliary, steps, tick, group)
        if group.writes:
            row: dict[str, Any] = {"epoch": epoch, "train_loss": loss, "lr": scheduler.get_last_lr()[0],
                                   "optimizer_steps": int(scheduler.last_epoch), "steps": steps}
            row.update(_validate(model, tokenizer, validation, labels, context.max_length, context.precision))
            if len(validation) >= config.min_validation_size:  # a smaller split only reports
                track_best(state, row, model, run_dir)
            state["history"].append(row)
            save_checkpoint(run_dir, epoch, trainable, optimizer, scheduler, state)
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
        stopped_early = group.agree(should_stop(state, config) and epoch < config.epochs)

    if not group.writes:
        return None
    if state["best_score"] is not None and (run_dir / "best").is_dir():
        load_weights(model, run_dir / "best")
    best = state["best_epoch"] or (state["history"][-1]["epoch"] if state["history"] else 0)
    record = {"run_key": key, "history": state["history"], "best_epoch": best, "stopped_early": stopped_early,
              "n_train": len(train), "extra": extra, "processes": group.world}
    save_trained_model(model, tokenizer, output_dir, record)
    if not config.keep_checkpoints:
        shutil.rmtree(run_dir, ignore_errors=True)
    return TrainResult(output_dir, state["history"], best, stopped_early, resumed, len(train), extra)


def epoch_batches(lengths: np.ndarray, config: TrainConfig, epoch: int) -> list[np.ndarray]:
    """The index batches of one epoch, as `train.batching` says; the same on every run and resume."""
    if config.batching == "tokens":
        return token_batches(lengths, config.batch_size, config.seed + epoch)
    return make_batches(lengths, config.batch_size, config.seed + epoch, config.group_by_length)


def train_epoch(model, optimizer, scheduler, sequences, targets, weights, batches, pad_id, config: TrainConfig,
                description: str, progress: bool, auxiliary: AuxiliaryLoss | None = None,
                steps: list[dict[str, Any]] | None = None,
                on_tick: Callable[[float], None] | None = None, group: Group | None = None) -> float:
    """One pass over `batches` (index arrays): dynamic padding, autocast, weighted loss, accumulation; mean loss.

    `auxiliary(step, batch)`, when given, is a further loss added at each step (the training objectives').
    `steps`, when given, gets one row per optimizer step: the global step, its loss and its learning rate.
    Progress (`tasks.progress.EpochProgress`) calls `on_tick(share of the epoch done)` at each ~10 %.
    In a data-parallel `group` each process computes its share of each batch and the gradients are summed.
    """
    group = group or Group()
    model.train()
    device = device_of(model)
    precision = resolve_precision(config.precision, device)
    total, count = 0.0, 0
    accumulate = config.gradient_accumulation_steps
    shown = EpochProgress(len(batches), description, progress, on_tick)
    step_loss, step_examples = 0.0, 0
    parameters = [parameter for settings in optimizer.param_groups for parameter in settings["params"]]
    for step, batch in enumerate(batches, start=1):
        mine = group.shard(batch)
        loss = torch.zeros((), device=device)
        if len(mine):
            inputs = to_device(pad_batch([sequences[i] for i in mine], pad_id), device)
            with autocast(precision, device):
                logits = model(**inputs).logits
                extra = auxiliary(step - 1, batch) if auxiliary is not None else None
            per_sample = torch.nn.functional.cross_entropy(logits.float(), targets[mine], reduction="none")
            loss = (per_sample * weights[mine]).sum() / len(batch)  # this share's part of the batch's mean
            if extra is not None:
                loss = loss + extra
        whole = group.total(loss.detach()).item()  # the whole batch's loss, the same on every process
        if not math.isfinite(whole):
            raise TrainingError(f"training loss became {whole} at {description}, batch {step}; lower "
                                f"train.learning_rate (now {config.learning_rate}) or check the data")
        if loss.requires_grad:
            (loss / accumulate).backward()
        step_loss, step_examples = step_loss + whole * len(batch), step_examples + len(batch)
        if step % accumulate == 0 or step == len(batches):
            group.sum_gradients(parameters)
            torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            learning_rate = scheduler.get_last_lr()[0]  # the rate this optimizer step uses
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if steps is not None:
                steps.append({"step": int(scheduler.last_epoch), "train_loss": step_loss / step_examples,
                              "lr": learning_rate})
            step_loss, step_examples = 0.0, 0
        total += whole * len(batch)
        count += len(batch)
        shown.update(step, count, total / count)
    shown.close()
    return total / max(count, 1)


def _validate(model, tokenizer, validation: pd.DataFrame, labels, max_length: int, precision: str) -> dict[str, Any]:
    if validation.empty:
        return {"val_accuracy": None, "val_macro_f1": None}
    predicted = predict(model, tokenizer, validation["text"].tolist(), max_length, precision=precision)
    metrics = compute_metrics(validation["label"].tolist(), predicted.labels, labels)
    return {"val_accuracy": metrics["accuracy"], "val_macro_f1": metrics["macro_f1"]}
