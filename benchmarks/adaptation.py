"""Target-domain accuracy of adaptflow's methods against baselines on real data, side by side.

    python benchmarks/adaptation.py --data ../shared/data/amazon-msd --pairs books:kitchen --methods source_only

Each domain gets a fixed, seeded split (1,600 train / 400 test; target: 25 labelled per class, the rest of its
training part unlabelled). Prints a markdown table; `--json PATH` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from tasks.config import AdaptflowConfig, build_config
from tasks.evaluation import compute_metrics
from tasks.inference import predict, resolve_precision
from tasks.loading import load_roles
from tasks.models import load_classifier_dir, load_tokenizer
from tasks.training import fine_tune

DEFAULT_DATA = Path(os.environ.get("ADAPTFLOW_DATA_DIR", "../shared/data/amazon-msd"))
DOMAINS = ("books", "electronics", "kitchen")
BUDGETS = {"small": {"model.max_length": 128, "train.epochs": 1},
           "full": {"model.max_length": 256, "train.epochs": 2}}


def pair_config(data_dir: Path, source: str, target: str, budget: str, seed: int, workdir: Path) -> AdaptflowConfig:
    raw = {"data": {"source": str(data_dir / f"{source}.csv"), "target": str(data_dir / f"{target}.csv")},
           "split": {"seed": seed, "source_test_size": 400, "target_test_size": 400, "target_labeled_per_class": 25},
           "model": {}, "train": {"seed": seed, "batch_size": 16, "learning_rate": 5e-5},
           "output": {"dir": str(workdir)}}
    for key, value in BUDGETS[budget].items():
        section, name = key.split(".")
        raw[section][name] = value
    return build_config(raw, "benchmark")


def run_tfidf(roles) -> dict:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform(roles.source_train["text"])
    classifier = LogisticRegression(max_iter=2000).fit(features, roles.source_train["label"])
    predicted = classifier.predict(vectorizer.transform(roles.target_test["text"]))
    return compute_metrics(roles.target_test["label"].tolist(), list(predicted), roles.labels)


def run_source_only(roles, config: AdaptflowConfig, workdir: Path) -> dict:
    result = fine_tune(roles.source_train, roles.target_validation.iloc[0:0], roles.labels, config.model.name_or_path,
                       config.model.max_length, config.train, workdir / "source_only", workdir / "checkpoints")
    model_dir = str(result.model_dir)
    predicted = predict(load_classifier_dir(model_dir), load_tokenizer(model_dir), roles.target_test["text"].tolist(),
                        config.model.max_length, 64, resolve_precision(config.train.precision))
    return compute_metrics(roles.target_test["label"].tolist(), predicted.labels, roles.labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dir with <domain>.csv files")
    parser.add_argument("--pairs", default="books:kitchen", help="source:target,... (default books:kitchen)")
    parser.add_argument("--methods", default="tfidf,source_only")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="full")
    parser.add_argument("--workdir", type=Path, default=Path("outputs/benchmarks/adaptation"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"adaptation benchmark: data directory {args.data} not found; pass --data or set ADAPTFLOW_DATA_DIR",
              file=sys.stderr)
        return 1
    rows = []
    for pair in args.pairs.split(","):
        source, target = pair.split(":")
        for seed in (int(s) for s in args.seeds.split(",")):
            workdir = args.workdir / f"{source}-{target}-{seed}"
            config = pair_config(args.data, source, target, args.budget, seed, workdir)
            roles = load_roles(config.data, config.split)
            for method in args.methods.split(","):
                started = time.perf_counter()
                metrics = run_tfidf(roles) if method == "tfidf" else run_source_only(roles, config, workdir)
                rows.append({"source": source, "target": target, "method": method, "branch": None,
                             "accuracy": round(metrics["accuracy"], 4), "macro_f1": round(metrics["macro_f1"], 4),
                             "seed": seed, "seconds": round(time.perf_counter() - started, 1)})
                print(f"{source}->{target} seed {seed} {method}: accuracy {metrics['accuracy']:.4f}", flush=True)
    print("\n| source | target | method | seed | accuracy | macro-F1 | seconds |\n|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['source']} | {row['target']} | {row['method']} | {row['seed']} | {row['accuracy']:.4f} | "
              f"{row['macro_f1']:.4f} | {row['seconds']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
