"""Target-domain accuracy of adaptflow's methods against baselines on real data, side by side.

    python benchmarks/adaptation.py --data ../shared/data/amazon-msd --pairs books:kitchen --seeds 0,1,2

Each domain gets a fixed, seeded split (1,600 train / 400 test; target: 25 labelled per class, the rest of its
training part unlabelled). Methods:

- `tfidf`: TF-IDF + logistic regression on the source only;
- `source_only`: the engine fine-tuned on the source only (the flow's baseline);
- `target_only`: the few-shot path (`strategy.branch: few_shot`, adaptflow's stages as for `auto`): the 50 labelled
  target texts only, the encoder tuned contrastively on pairs of them (setfit), a probe head, then fine-tuned;
- `auto`: adaptflow's stages (validate, similarity, prepare, train, evaluate), each run as `adaptflow stage NAME`
  runs it (`flows.stage_registry.run_stage`: the stage functions the flow's tasks run) with `strategy.branch: auto`;
  the branch it took is shown;
- `joint_training`, `shift_adaptation`: the same with the branch forced.

`--select-on dev` scores every method on a dev split instead of the test set, for choosing defaults: 200 texts
(seeded, stratified) of the target's training part, which leave its unlabelled pool; the labelled target texts are
then drawn from the rest, and the 400 test texts are not read by any method. Choose on dev, report on test once.

When `auto` takes a branch that is also run forced for the same pair and seed, the computation is the same, so its
figures are reused (the row says so) instead of training twice. Prints a markdown table per run and the means over
seeds; `--json PATH` writes the rows `{source, target, method, branch, accuracy, macro_f1, seed}`.
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

from tasks.config import AdaptflowConfig, apply_overrides, build_config
from tasks.devices import placement
from tasks.errors import AdaptflowError
from tasks.evaluation import compute_metrics
from tasks.inference import predict
from tasks.loading import load_roles, read_examples
from tasks.models import load_classifier_dir, load_tokenizer
from tasks.roles import split_off
from tasks.training import fine_tune

BRANCH_METHODS = ("auto", "joint_training", "shift_adaptation")
METHODS = ("tfidf", "source_only", "target_only", *BRANCH_METHODS)

DEFAULT_DATA = Path(os.environ.get("ADAPTFLOW_DATA_DIR", "../shared/data/amazon-msd"))
DOMAINS = ("books", "electronics", "kitchen")
DEV_SIZE = 200
BUDGETS = {"small": {"model.max_length": 128, "train.epochs": 1},
           "full": {"model.max_length": 256, "train.epochs": 2}}


def pair_config(data_dir: Path, source: str, target: str, budget: str, seed: int, workdir: Path,
                overrides: tuple[str, ...] = ()) -> AdaptflowConfig:
    raw = {"data": {"source": str(data_dir / f"{source}.csv"), "target": str(data_dir / f"{target}.csv")},
           "split": {"seed": seed, "source_test_size": 400, "target_test_size": 400, "target_labeled_per_class": 25},
           "model": {}, "train": {"seed": seed, "batch_size": 16, "learning_rate": 5e-5},
           "similarity": {"seed": seed}, "evaluation": {"baseline": False}, "tracking": {"enabled": False},
           "output": {"dir": str(workdir)}}
    for key, value in BUDGETS[budget].items():
        section, name = key.split(".")
        raw[section][name] = value
    return build_config(apply_overrides(raw, list(overrides)), "benchmark")


def dev_config(config: AdaptflowConfig, workdir: Path) -> AdaptflowConfig:
    """`config` scored on the target's dev split: the test texts split off as usual and set aside unread, then
    DEV_SIZE texts of the rest become `data.target_test` and the others `data.target` (the labelled and unlabelled
    target texts are drawn from them). Both written as text,label CSVs under workdir."""
    data, split = config.data, config.split
    target = read_examples(data.target, data)
    rest, _test = split_off(target, split.target_test_size, split.seed, "split.target_test_size", data.target)
    rest, dev = split_off(rest, DEV_SIZE, split.seed, "the dev split", data.target)
    workdir.mkdir(parents=True, exist_ok=True)
    files = {"target": workdir / "dev-target-rest.csv", "target_test": workdir / "dev-target-dev.csv"}
    rest[["text", "label"]].to_csv(files["target"], index=False)
    dev[["text", "label"]].to_csv(files["target_test"], index=False)
    return config.model_copy(update={"data": data.model_copy(update={**files, "text_columns": None})})


def run_tfidf(roles) -> dict:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform(roles.source_train["text"])
    classifier = LogisticRegression(max_iter=2000).fit(features, roles.source_train["label"])
    predicted = classifier.predict(vectorizer.transform(roles.target_test["text"]))
    return compute_metrics(roles.target_test["label"].tolist(), list(predicted), roles.labels)


def run_source_only(roles, config: AdaptflowConfig, workdir: Path) -> dict:
    return _fine_tuned(roles, config, roles.source_train, roles.target_validation.iloc[0:0], workdir / "source_only")


def _fine_tuned(roles, config: AdaptflowConfig, train, validation, model_dir: Path) -> dict:
    result = fine_tune(train, validation, roles.labels, config.model.name_or_path, config.model.max_length,
                       config.train, model_dir, model_dir.parent / "checkpoints")
    saved = str(result.model_dir)
    device, precision = placement(config.train)
    predicted = predict(load_classifier_dir(saved).to(device), load_tokenizer(saved),
                        roles.target_test["text"].tolist(), config.model.max_length, 64, precision)
    return compute_metrics(roles.target_test["label"].tolist(), predicted.labels, roles.labels)


def branch_config(config: AdaptflowConfig, branch: str, workdir: Path) -> AdaptflowConfig:
    """`config` with `strategy.branch` = `branch`, writing under workdir/branch, embeddings shared by the pair."""
    return config.model_copy(update={
        "strategy": config.strategy.model_copy(update={"branch": branch}),
        "output": config.output.model_copy(update={"dir": workdir / branch}),
        "similarity": config.similarity.model_copy(update={"cache_dir": workdir / "embedding-cache"}),
    })


def decide(config: AdaptflowConfig):
    """The validate and similarity stages, as `adaptflow stage` runs them: (validation summary, branch decision),
    before any training."""
    from flows import stage_registry

    return stage_registry.run_stage(config, "validate"), stage_registry.run_stage(config, "similarity")


def run_branch(config: AdaptflowConfig, branch: str, workdir: Path, decided=None) -> tuple[dict, str, list[str]]:
    """adaptflow's stages with `strategy.branch` = `branch`: (target metrics, branch taken, strategies applied).
    `decided`: `decide` of the same config, already run (its stages are not run again)."""
    from flows import stage_registry
    from tasks.report import summarise_run

    config = branch_config(config, branch, workdir)
    validation, decision = decided or decide(config)
    prepared = stage_registry.run_stage(config, "prepare")
    adapted = stage_registry.run_stage(config, "train")
    report = stage_registry.run_stage(config, "evaluate")
    summary = summarise_run(validation, decision, prepared, adapted, report)
    return report.metrics, decision.branch, summary["strategies"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dir with <domain>.csv files")
    parser.add_argument("--pairs", default=",".join(f"{a}:{b}" for a in DOMAINS for b in DOMAINS if a != b),
                        help="source:target,... (default: the 6 ordered pairs of books, electronics, kitchen)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"some of {','.join(METHODS)}")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="full")
    parser.add_argument("--workdir", type=Path, default=Path("outputs/benchmarks/adaptation"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                        help="override one setting for every method, e.g. --set train.device=cuda (repeatable)")
    parser.add_argument("--select-on", choices=("test", "dev"), default="test",
                        help="score on the target test set, or on a dev split of its training part (for choosing)")
    parser.add_argument("--label", default="", help="appended to each method name in the rows (a variant's name)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"adaptation benchmark: data directory {args.data} not found; pass --data or set ADAPTFLOW_DATA_DIR",
              file=sys.stderr)
        return 1
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        print(f"adaptation benchmark: unknown method {unknown[0]}; choose from {','.join(METHODS)}", file=sys.stderr)
        return 1
    rows = []
    for pair in args.pairs.split(","):
        source, target = pair.split(":")
        for seed in (int(s) for s in args.seeds.split(",")):
            workdir = args.workdir / f"{source}-{target}-{seed}"
            try:
                config = pair_config(args.data, source, target, args.budget, seed, workdir, tuple(args.overrides))
                if args.select_on == "dev":
                    config = dev_config(config, workdir)
            except AdaptflowError as error:
                print(f"adaptation benchmark: {error}", file=sys.stderr)
                return 1
            roles = load_roles(config.data, config.split)
            done: dict[str, dict] = {}
            # forced branches first, so that auto can reuse the one it takes
            for method in sorted(methods, key=lambda m: m == "auto"):
                started = time.perf_counter()
                branch, strategies, reused = None, [], None
                if method == "tfidf":
                    metrics = run_tfidf(roles)
                elif method == "source_only":
                    metrics = run_source_only(roles, config, workdir)
                elif method == "target_only":
                    metrics, branch, strategies = run_branch(config, "few_shot", workdir)
                elif method == "auto" and (decided := decide(branch_config(config, "auto", workdir)))[1].branch \
                        in done:
                    reused = decided[1].branch  # the similarity decision alone (embeddings cached), then no training
                    metrics, branch, strategies = (done[reused][key] for key in ("metrics", "branch", "strategies"))
                else:
                    metrics, branch, strategies = run_branch(config, method, workdir,
                                                             decided if method == "auto" else None)
                    done[method] = {"metrics": metrics, "branch": branch, "strategies": strategies}
                row = {"source": source, "target": target, "method": method + args.label, "branch": branch,
                       "accuracy": round(metrics["accuracy"], 4), "macro_f1": round(metrics["macro_f1"], 4),
                       "seed": seed, "seconds": round(time.perf_counter() - started, 1), "strategies": strategies,
                       "scored_on": args.select_on}
                if reused:
                    row["reused_from"] = reused
                rows.append(row)
                print(f"{source}->{target} seed {seed} {method}{args.label}{f' ({branch})' if branch else ''}: accuracy "
                      f"{metrics['accuracy']:.4f} macro-F1 {metrics['macro_f1']:.4f}", flush=True)
                if args.json:
                    _write_rows(args.json, rows)
    print(table(rows))
    print(means_table(rows))
    if args.json:
        _write_rows(args.json, rows)
    return 0


def table(rows: list[dict]) -> str:
    lines = ["", "| source | target | method | branch | seed | accuracy | macro-F1 | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        method = row["method"] + (f" (= {row['reused_from']})" if row.get("reused_from") else "")
        lines.append(f"| {row['source']} | {row['target']} | {method} | {row['branch'] or '-'} | {row['seed']} | "
                     f"{row['accuracy']:.4f} | {row['macro_f1']:.4f} | {row['seconds']} |")
    return "\n".join(lines)


def means_table(rows: list[dict]) -> str:
    """Mean accuracy per pair and method over the seeds run, and auto's gain over source-only."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        groups.setdefault((row["source"], row["target"], row["method"]), []).append(row["accuracy"])
    lines = ["", "| source | target | method | seeds | mean accuracy | vs source_only |", "|---|---|---|---|---|---|"]
    for (source, target, method), values in groups.items():
        base = groups.get((source, target, "source_only"))
        mean = sum(values) / len(values)
        delta = f"{(mean - sum(base) / len(base)) * 100:+.2f} pt" if base and method != "source_only" else "-"
        lines.append(f"| {source} | {target} | {method} | {len(values)} | {mean:.4f} | {delta} |")
    return "\n".join(lines)


def _write_rows(path: Path, rows: list[dict]) -> None:
    """Write the rows so far (atomically: a killed run leaves the last complete list)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(path.suffix + ".tmp")
    temp.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    temp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
