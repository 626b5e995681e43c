"""The pipeline's stages: the one code path that both the Prefect flow and `adaptflow stage NAME` (dvc.yaml) run.

Each stage reads its inputs from and writes its outputs to files under `output.dir` (atomically), so a stage can run
alone, in a fresh process, as DVC calls it; the flow passes only small results between them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.atomic import atomic_dir, write_csv, write_json, write_parquet
from tasks.augmentation import frequent_words
from tasks.branching import Decision, build_joint_training_set, build_shift_training_set, decide_branch
from tasks.config import AdaptflowConfig
from tasks.data_validation import role_files, validate_roles
from tasks.devices import placement
from tasks.domain_adversarial import AdversarialObjective
from tasks.embeddings import embed_texts
from tasks.errors import ConfigError, DataError, ValidationFailed
from tasks.evaluation import (
    compute_metrics,
    gain,
    plot_confusion_matrix,
    plot_domain_embeddings,
    plot_training_curves,
)
from tasks.inference import predict, predict_probabilities
from tasks.language_modeling import MaskedLMObjective
from tasks.loading import load_roles
from tasks.pseudo_labeling import select_confident
from tasks.resampling import importance_weights
from tasks.similarity import measure_domain_shift
from tasks.training import TrainResult, fine_tune
from tasks.validation import failure_line
from tasks.vocabulary import domain_specific_words, label_neutral, substitution_map

STAGES = ("validate", "similarity", "prepare", "train-baseline", "train", "evaluate", "register")
INPUT_FIELDS = ("source", "target", "target_labeled", "target_unlabeled", "target_test")

# The params.yaml keys each stage reads (dvc.yaml lists the same; a test keeps them equal) and the stages it follows.
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "validate": ("data", "split", "validation", "model"),
    "similarity": ("similarity", "strategy.branch", "model.name_or_path"),
    "prepare": ("strategy", "similarity", "split.seed"),
    "train-baseline": ("model", "train"),
    "train": ("model", "train", "strategy"),
    "evaluate": ("evaluation", "model.max_length", "train.precision"),
    "register": ("tracking",),
}
UPSTREAM: dict[str, tuple[str, ...]] = {
    "validate": (),
    "similarity": ("validate",),
    "prepare": ("validate", "similarity"),
    "train-baseline": ("validate",),
    "train": ("validate", "similarity", "prepare"),
    "evaluate": ("validate", "similarity", "prepare", "train-baseline", "train"),
    "register": ("validate", "similarity", "prepare", "train-baseline", "train", "evaluate"),
}


@dataclass(frozen=True)
class Layout:
    """Where every stage reads and writes, under the configured output directory."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    def role(self, name: str) -> Path:
        return self.data / f"{name}.parquet"

    @property
    def labels(self) -> Path:
        return self.data / "labels.json"

    @property
    def validation(self) -> Path:
        return self.root / "validation" / "summary.json"

    @property
    def data_docs(self) -> Path:
        return self.root / "validation" / "data_docs"

    @property
    def similarity(self) -> Path:
        return self.root / "similarity" / "report.json"

    @property
    def training_set(self) -> Path:
        return self.root / "training_set" / "train_adapted.parquet"

    def model(self, name: str) -> Path:
        return self.root / "models" / name

    def history(self, name: str) -> Path:
        return self.root / "models" / f"{name}_history.json"

    @property
    def pseudo_labels(self) -> Path:
        return self.root / "training_set" / "pseudo_labeled.parquet"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def registration(self) -> Path:
        return self.root / "registry" / "registration.json"


STAGE_DIRS = ("data", "validation", "similarity", "training_set", "models", "checkpoints", "reports", "registry",
              ".stamps")


def layout_of(config: AdaptflowConfig) -> Layout:
    """The output layout; refuses stage directories that are symlinks leading outside `output.dir`."""
    layout = Layout(Path(config.output.dir))
    root = layout.root.resolve()
    for name in STAGE_DIRS:
        path = layout.root / name
        if path.is_symlink() or path.exists():
            target = path.resolve()
            if target != root and root not in target.parents:
                raise ConfigError(f"{path}: leads to {target}, outside output.dir {root}; outputs are written only "
                                  "under output.dir (remove the link)")
    return layout


def validate(config: AdaptflowConfig) -> dict[str, Any]:
    """Read and split every data role, validate them (GX suite), and only if no error-level check failed write
    each role as Parquet for the later stages. Raises ValidationFailed with the summary's failures otherwise."""
    from tasks.models import load_tokenizer

    layout = layout_of(config)
    roles = load_roles(config.data, config.split)
    if config.validation.enabled:
        summary, roles = validate_roles(roles, config.validation, role_files(config.data),
                                        load_tokenizer(config.model.name_or_path), config.model.max_length,
                                        layout.data_docs)
    else:
        summary = {"status": "disabled", "errors": 0, "warnings": 0, "roles": {}, "failures": []}
    summary["counts"] = {name: len(frame) for name, frame in roles.frames().items()}
    layout.data_docs.mkdir(parents=True, exist_ok=True)  # a DVC out, even when validation is disabled
    write_json(layout.validation, summary)
    if summary["errors"]:
        raise ValidationFailed(validation_message(summary))
    for name, frame in roles.frames().items():
        write_parquet(layout.role(name), frame)
    write_json(layout.labels, list(roles.labels))
    return summary


def validation_message(summary: dict[str, Any]) -> str:
    """One line: how many error-level checks failed, and the first of them."""
    errors = [f for f in summary["failures"] if f["severity"] == "error"]
    more = f" (+{len(errors) - 1} more, see the validation summary)" if len(errors) > 1 else ""
    return f"data validation failed: {failure_line(errors[0])}{more}"


def similarity(config: AdaptflowConfig) -> Decision:
    """Measure the domain shift, pick the branch (the measures decide when `strategy.branch` is auto), record why,
    plot the domains."""
    layout = layout_of(config)
    measures = measure_pair(config, read_role(config, "source_train"), target_pool(config),
                            layout.similarity.parent / "domains.png")
    decision = decide_branch(config.strategy.branch, measures, config.similarity)
    write_json(layout.similarity, decision.as_dict())
    return decision


def prepare(config: AdaptflowConfig) -> dict[str, Any]:
    """Write the adapted model's training set for the chosen branch; returns its size and the strategies used."""
    layout = layout_of(config)
    decision = Decision.from_dict(json.loads(layout.similarity.read_text(encoding="utf-8")))
    source, target = read_role(config, "source_train"), read_role(config, "target_labeled")
    if decision.branch == "joint_training":
        frame, applied = build_joint_training_set(source, target, config.strategy.target_weight), ["joint_training"]
    else:
        pool = target_pool(config)
        importance = None
        if "importance_weighting" in config.strategy.shift_strategies:
            sample = sample_texts(pool, config.similarity.sample_size, config.similarity.seed)
            source_vectors, target_vectors = embed_pair(config, source["text"].tolist(), sample["text"].tolist())
            importance = importance_weights(source_vectors, target_vectors,
                                            (1 / config.strategy.importance_clip, config.strategy.importance_clip),
                                            config.similarity.seed)
        substitution = None
        if "vocabulary_substitution" in config.strategy.shift_strategies:
            substitution = vocabulary_mapping(config, source, pool["text"].tolist())
        frame, applied = build_shift_training_set(source, target, config.strategy, importance,
                                                  frequent_words(pool["text"].tolist()), config.split.seed,
                                                  substitution)
    write_parquet(layout.training_set, frame)
    summary = {"branch": decision.branch, "rows": len(frame), "strategies": applied}
    if decision.branch == "shift_adaptation" and "vocabulary_substitution" in config.strategy.shift_strategies:
        summary["substitutions"] = substitution or {}
    write_json(layout.training_set.parent / "summary.json", summary)
    return summary


def vocabulary_mapping(config: AdaptflowConfig, source: pd.DataFrame, target_texts: list[str]) -> dict[str, str]:
    """Source-specific word -> the target-specific word nearest to it (foundation-model embeddings of the words);
    source words that carry the label (sentiment words) are left out."""
    top = config.strategy.substitution_vocabulary
    source_texts = source["text"].tolist()
    source_words = label_neutral(domain_specific_words(source_texts, target_texts, top), source_texts,
                                 source["label"].tolist())
    target_words = domain_specific_words(target_texts, source_texts, top)
    if not source_words or not target_words:
        return {}
    source_vectors, target_vectors = embed_pair(config, source_words, target_words)
    return substitution_map(source_words, target_words, source_vectors, target_vectors,
                            config.strategy.substitution_min_similarity)


def measure_pair(config: AdaptflowConfig, source: pd.DataFrame, target: pd.DataFrame,
                 plot: Path | None = None) -> dict[str, float]:
    """The domain-shift measures on seeded samples of both sides (embeddings from the cache); plots the domains."""
    sim = config.similarity
    source_sample, target_sample = sample_texts(source, sim.sample_size, sim.seed), \
        sample_texts(target, sim.sample_size, sim.seed)
    source_vectors, target_vectors = embed_pair(config, source_sample["text"].tolist(),
                                                target_sample["text"].tolist())
    target_labels = target_sample["label"].dropna().tolist() if "label" in target_sample else []
    measures = measure_domain_shift(source_vectors, target_vectors, source_sample["text"].tolist(),
                                    target_sample["text"].tolist(), source_sample["label"].tolist(),
                                    target_labels, sim.permutations, sim.seed)
    measures.update(n_source=len(source_sample), n_target=len(target_sample))
    if plot is not None:
        plot_domain_embeddings(source_vectors, target_vectors, plot)
    return measures


def target_pool(config: AdaptflowConfig) -> pd.DataFrame:
    """Target texts available for training-time use: labelled, validation and unlabelled (test if none)."""
    parts = [read_role(config, name) for name in ("target_labeled", "target_validation", "target_unlabeled")]
    pool = pd.concat([part for part in parts if not part.empty] or [read_role(config, "target_test")],
                     ignore_index=True)
    return pool


def sample_texts(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=min(size, len(frame)), random_state=seed).reset_index(drop=True)


def embed_pair(config: AdaptflowConfig, first: list[str], second: list[str]):
    """Embeddings of two text lists in one call: one cache read and at most one model load."""
    device, precision = placement(config.train)
    vectors = embed_texts(first + second, config.model.name_or_path, config.similarity.max_length,
                          config.similarity.cache_dir, precision=precision, device=str(device))
    return vectors[: len(first)], vectors[len(first):]


def train(config: AdaptflowConfig, which: str = "adapted", progress: bool = True) -> dict[str, Any]:
    """Fine-tune the adapted model (on the branch's training set) or the source-only baseline.

    In the shift-adaptation branch, `target_mlm` adds the target masked-LM loss to every step, `domain_adversarial`
    a domain classifier behind a gradient reversal (on the prepared set's training, the first round when there are
    two), and `pseudo_labeling` trains in two rounds: the first model labels the unlabelled target texts and the
    second round continues from it on the prepared set plus the confidently pseudo-labelled target texts (without
    `pseudo_label_with_source`, on the labelled and pseudo-labelled target texts alone).
    """
    layout = layout_of(config)
    validation = read_role(config, "target_validation")
    labels = read_labels(config)
    strategies: list[str] = []
    mlm = adversarial = None
    if which == "baseline":  # source data alone: no target row, not even for early stopping
        data, validation = read_role(config, "source_train"), validation.iloc[0:0]
    elif which == "adapted":
        data = _read_parquet(layout.training_set, "prepare")
        decision = Decision.from_dict(_read_json(layout.similarity, "similarity"))
        if decision.branch == "shift_adaptation":
            strategies = [name for name in config.strategy.shift_strategies if name in ("pseudo_labeling",
                                                                                        "target_mlm",
                                                                                        "domain_adversarial")]
        pool = tuple(target_pool(config)["text"]) if {"target_mlm", "domain_adversarial"} & set(strategies) else ()
        if "target_mlm" in strategies:
            mlm = MaskedLMObjective(pool, config.strategy.mlm_weight, config.strategy.mlm_probability,
                                    config.strategy.mlm_head_warmup_steps)
        if "domain_adversarial" in strategies:
            adversarial = AdversarialObjective(pool, config.strategy.adversarial_weight)
    else:
        raise ConfigError(f"unknown model '{which}'; choose baseline or adapted")
    unlabeled = read_role(config, "target_unlabeled") if "pseudo_labeling" in strategies else None
    applied = [f"target_mlm (masked-LM weight {config.strategy.mlm_weight:g} on {len(mlm.texts)} target texts)"] \
        if mlm is not None else []
    if adversarial is not None:
        applied.append(f"domain_adversarial (gradient reversal up to {adversarial.weight:g} against a domain "
                       f"classifier, {len(adversarial.texts)} unlabelled target texts)")
    extra: dict[str, Any] = {}
    if unlabeled is not None and not unlabeled.empty:
        result, extra = _self_train(config, data, validation, labels, unlabeled, mlm, progress, adversarial)
        student = "continues from the first model" if config.strategy.pseudo_label_student == "continue" \
            else "trains a fresh model"
        applied.append(f"pseudo_labeling ({extra['selected']} of {extra['candidates']} unlabelled target texts at "
                       f"confidence >= {config.strategy.pseudo_label_threshold:g}; second round {student} on "
                       f"{'the source and ' if config.strategy.pseudo_label_with_source else ''}the target texts)")
    else:
        if which == "adapted":
            write_parquet(layout.pseudo_labels, pd.DataFrame(columns=["text", "label", "confidence"]))
        result = fine_tune(data, validation, labels, config.model.name_or_path, config.model.max_length,
                           config.train, layout.model(which), layout.checkpoints, progress=progress, mlm=mlm,
                           adversarial=adversarial)
    summary = {"model_dir": str(result.model_dir), "history": result.history, "best_epoch": result.best_epoch,
               "stopped_early": result.stopped_early, "resumed_from_epoch": result.resumed_from_epoch,
               "n_train": result.n_train, "strategies": applied, **extra}
    write_json(layout.history(which), summary)
    return summary


def _self_train(config: AdaptflowConfig, data: pd.DataFrame, validation: pd.DataFrame, labels: tuple[str, ...],
                unlabeled: pd.DataFrame, mlm: MaskedLMObjective | None, progress: bool,
                adversarial: AdversarialObjective | None = None) -> tuple[TrainResult, dict[str, Any]]:
    """Round 1 on the prepared set; pseudo-label the unlabelled target; round 2 continues on the prepared set plus
    the pseudo-labelled texts, or (without `pseudo_label_with_source`) on the target texts alone, labelled and
    pseudo-labelled."""
    from tasks.models import load_classifier_dir, load_tokenizer

    layout = layout_of(config)
    strategy = config.strategy
    first_dir = layout.checkpoints / "self-training" / "round-1"
    first = fine_tune(data, validation, labels, config.model.name_or_path, config.model.max_length, config.train,
                      first_dir, layout.checkpoints, progress=progress, mlm=mlm, adversarial=adversarial)
    device, precision = placement(config.train)
    probabilities = predict_probabilities(load_classifier_dir(str(first_dir)).to(device),
                                          load_tokenizer(str(first_dir)), unlabeled["text"].tolist(),
                                          config.model.max_length, config.evaluation.batch_size, precision)
    pseudo = select_confident(unlabeled["text"].tolist(), probabilities, labels, strategy.pseudo_label_threshold,
                              strategy.pseudo_label_max_per_class)
    write_parquet(layout.pseudo_labels, pseudo)
    extra = {"candidates": len(unlabeled), "selected": len(pseudo),
             "selected_per_class": {label: int((pseudo["label"] == label).sum()) for label in labels},
             "round_1": {"history": first.history, "best_epoch": first.best_epoch,
                         "reused": bool(first.extra.get("reused"))}}
    if strategy.pseudo_label_with_source:  # the prepared rows keep their weights; each pseudo-label weighs 1
        kept = data.assign(weight=data["weight"] if "weight" in data.columns else 1.0)
    else:  # the target texts alone, each counting once
        kept = (data[data["domain"] == "target"] if "domain" in data.columns else data.iloc[0:0]).assign(weight=1.0)
    second_set = pd.concat([kept[["text", "label", "weight"]], pseudo[["text", "label"]].assign(weight=1.0)],
                           ignore_index=True)
    if pseudo.empty or second_set.empty:
        extra["round_2"] = "skipped: no unlabelled target text reached the confidence threshold in every class"
        with atomic_dir(layout.model("adapted")) as temp:  # the first-round model is the adapted model
            shutil.copytree(first_dir, temp, dirs_exist_ok=True)
        shutil.rmtree(first_dir.parent, ignore_errors=True)
        return TrainResult(layout.model("adapted"), first.history, first.best_epoch, first.stopped_early,
                           first.resumed_from_epoch, len(data)), extra
    second_config = config.train.model_copy(update={"epochs": strategy.pseudo_label_epochs})
    start = str(first_dir) if strategy.pseudo_label_student == "continue" else config.model.name_or_path
    second = fine_tune(second_set, validation, labels, start, config.model.max_length,
                       second_config, layout.model("adapted"), layout.checkpoints, progress=progress, mlm=mlm)
    offset = len(first.history)
    history = [{**row, "round": 1} for row in first.history] + \
        [{**row, "epoch": row["epoch"] + offset, "round": 2} for row in second.history]
    if not config.train.keep_checkpoints:
        shutil.rmtree(first_dir.parent, ignore_errors=True)
    return TrainResult(second.model_dir, history, second.best_epoch + offset, second.stopped_early,
                       second.resumed_from_epoch, len(data) + len(pseudo)), extra


def evaluate(config: AdaptflowConfig) -> dict[str, Any]:
    """Score the adapted model (and the baseline) on the target test set; write metrics, predictions and plots."""
    from tasks.models import load_classifier, load_tokenizer

    layout = layout_of(config)
    labels = read_labels(config)
    test = read_role(config, "target_test")
    source_test = read_role(config, "source_test")
    device, precision = placement(config.train)
    names = ["adapted"] + (["baseline"] if config.evaluation.baseline else [])
    results: dict[str, Any] = {}
    histories = {}
    for name in names:
        model_dir = layout.model(name)
        if not model_dir.is_dir():
            raise DataError(f"{model_dir}: no trained model; run the train stages first")
        model, tokenizer = load_classifier(str(model_dir), labels).to(device), load_tokenizer(str(model_dir))
        predicted = predict(model, tokenizer, test["text"].tolist(), config.model.max_length,
                            config.evaluation.batch_size, precision)
        results[name] = compute_metrics(test["label"].tolist(), predicted.labels, labels)
        if not source_test.empty:
            source_pred = predict(model, tokenizer, source_test["text"].tolist(), config.model.max_length,
                                  config.evaluation.batch_size, precision)
            results[name]["source"] = compute_metrics(source_test["label"].tolist(), source_pred.labels, labels)
        if name == "adapted":
            write_csv(layout.reports / "predictions.csv",
                      test.assign(predicted=predicted.labels, score=predicted.scores.round(4)))
        plot_confusion_matrix(results[name]["confusion_matrix"], list(labels), f"{name} on target test",
                              layout.reports / f"confusion_matrix_{name}.png")
        histories[name] = json.loads(layout.history(name).read_text(encoding="utf-8"))["history"]
    plot_training_curves(histories, layout.reports / "training_curves.png")
    report = {"metrics": results["adapted"], "baseline_metrics": results.get("baseline"),
              "gain": gain(results["adapted"], results.get("baseline")), "model_dir": str(layout.model("adapted"))}
    write_json(layout.reports / "metrics.json", report)
    return report


def run_summary(config: AdaptflowConfig) -> dict[str, Any]:
    """The story of a finished run, from the stages' files: branch and why, strategies, validation, metrics."""
    layout = layout_of(config)
    validation = _read_json(layout.validation, "validate")
    decision = _read_json(layout.similarity, "similarity")
    prepared = _read_json(layout.training_set.parent / "summary.json", "prepare")
    report = _read_json(layout.reports / "metrics.json", "evaluate")
    trained = _read_json(layout.history("adapted"), "train")
    return {"branch": decision["branch"], "decision": decision,
            "strategies": prepared["strategies"] + trained.get("strategies", []),
            "rows": validation["counts"], "validation": validation["status"], **report}


def input_files(config: AdaptflowConfig) -> dict[str, str]:
    """The data files this run reads, by config field (for provenance: their DVC md5 goes on the MLflow run)."""
    return {name: str(getattr(config.data, name)) for name in INPUT_FIELDS if getattr(config.data, name) is not None}


def track(tracker: Any, config: AdaptflowConfig, stage: str) -> None:
    """Log what `stage` wrote to the run's MLflow tracker (the flow calls this after each task)."""
    layout = layout_of(config)
    if stage == "validate":
        tracker.log_validation(layout)
    elif stage == "similarity":
        tracker.log_similarity(layout)
    elif stage == "prepare":
        tracker.log_prepared(layout)
    elif stage in ("train-baseline", "train"):
        tracker.log_training(layout, "baseline" if stage == "train-baseline" else "adapted")
    elif stage == "evaluate":
        from tasks.report import run_markdown

        tracker.log_evaluation(layout, run_markdown(run_summary(config)))


def register_model(tracker: Any, config: AdaptflowConfig, flow_run_id: str | None = None) -> dict[str, Any]:
    """Log the adapted model into the run and register it through the champion/challenger gate."""
    from tasks.promotion import Scores

    layout = layout_of(config)
    metrics = _read_json(layout.reports / "metrics.json", "evaluate")["metrics"]
    scores = Scores(metrics["macro_f1"], (metrics.get("source") or {}).get("macro_f1"))
    tracker.log_model(layout.model("adapted"), read_role(config, "target_test")["text"].head(3).tolist())
    return tracker.register(scores, flow_run_id)


def run_status(error: BaseException) -> str:
    """The MLflow status for a run that ended with `error`: KILLED when interrupted or cancelled, else FAILED."""
    from prefect.exceptions import TerminationSignal

    return "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit, TerminationSignal)) else "FAILED"


def register(config: AdaptflowConfig) -> dict[str, Any]:
    """The DVC `register` stage: one MLflow run with everything the earlier stages wrote, then the registry."""
    from tasks.tracking import RunTracker

    if not config.tracking.enabled:
        registration = {"skipped": "tracking.enabled is false"}
        write_json(layout_of(config).registration, registration)
        return registration
    tracker = RunTracker.open(config, input_files(config), {"adaptflow.trigger": "dvc repro"}, run_name="dvc-repro")
    try:
        for stage in STAGES[:-1]:
            if stage != "train-baseline" or config.evaluation.baseline:
                track(tracker, config, stage)
        registration = register_model(tracker, config) if config.tracking.register_model else {"skipped": "tracking.register_model is false"}
    except BaseException as error:
        tracker.close(run_status(error))
        raise
    tracker.close("FINISHED")
    write_json(layout_of(config).registration, registration)
    return registration


def _read_json(path: Path, stage: str) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: missing; run the {stage} stage first (adaptflow stage {stage})")
    return json.loads(path.read_text(encoding="utf-8"))


def read_role(config: AdaptflowConfig, name: str) -> pd.DataFrame:
    return _read_parquet(layout_of(config).role(name), "validate")


def read_labels(config: AdaptflowConfig) -> tuple[str, ...]:
    path = layout_of(config).labels
    if not path.is_file():
        raise DataError(f"{path}: missing; run the validate stage first (adaptflow stage validate)")
    return tuple(json.loads(path.read_text(encoding="utf-8")))


def _read_parquet(path: Path, stage: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: missing; run the {stage} stage first (adaptflow stage {stage})")
    return pd.read_parquet(path)
