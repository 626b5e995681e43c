"""What the pipeline costs on top of the bare engine, what a re-run with unchanged inputs costs, and `dvc repro` idle.

    .venv/bin/python benchmarks/pipeline.py [--params params.yaml] [--json PATH] [--skip-dvc]

Runs, one after the other, on the embedded default data (params.yaml) in a scratch directory:
  1. the flow with tracking off (fresh outputs and embedding cache),
  2. the flow with tracking on (fresh outputs and embedding cache): tracking's cost is measured inside the run (time
     spent in the MLflow calls) and as the difference to run 1,
  3. the same flow again, nothing changed: cached stages (rerun_fraction = run 3 / run 2),
  4. the bare engine on the same data: the training the flow does (the two fine-tunes, with the shift branch's
     self-training round) and the target-test predictions, nothing else
     (overhead_pct = (run 2 - bare) / bare: validation, similarity, orchestration, tracking),
  5. `dvc repro` twice in a copy of the repo; the second, with nothing changed, is `dvc_noop_s`.
The Prefect API (ephemeral) is started and one untimed flow run made before timing (imports, page cache, kernels),
so the runs compared are equally warm; each timed run still starts with empty outputs and embedding cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(action):
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def flow_config(base, workdir: Path, tracking: bool):
    config = base.model_copy(deep=True)
    config.output.dir = workdir / "outputs"
    config.similarity.cache_dir = workdir / "embeddings"
    config.tracking.enabled = tracking
    config.tracking.uri = f"sqlite:///{workdir / 'mlruns.db'}"
    return config


def bare_engine(config, workdir: Path) -> float:
    """The training and predicting the flow does, without the flow: the baseline and adapted fine-tunes as the
    train stage runs them (the shift branch's self-training included: first round, pseudo-labelling, second round)
    on a copy of the data the flow prepared, then the target-test predictions of both models. No validation,
    similarity, orchestration, tracking, plots or reports."""
    import pandas as pd

    from flows import stages
    from tasks.devices import resolve_precision
    from tasks.inference import predict
    from tasks.models import load_classifier_dir, load_tokenizer

    prepared = config.output.dir
    bare = config.model_copy(deep=True)
    bare.output.dir = workdir / "bare"
    for part in ("data", "similarity", "training_set"):  # the flow's inputs to training, nothing it trained
        shutil.copytree(prepared / part, bare.output.dir / part)
    test = pd.read_parquet(prepared / "data" / "target_test.parquet")
    started = time.perf_counter()
    for which in ("baseline", "adapted"):
        model_dir = stages.train(bare, which, progress=False)["model_dir"]
        predict(load_classifier_dir(model_dir), load_tokenizer(model_dir), test["text"].tolist(),
                config.model.max_length, config.evaluation.batch_size, resolve_precision(config.train.precision))
    return time.perf_counter() - started


def dvc_noop(workdir: Path) -> tuple[float, float]:
    """`dvc repro` on a copy of the repo (tracked files only), then again with nothing changed."""
    copy = workdir / "repo"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, copy / name)
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'dvc-mlruns.db'}"}
    first, _ = timed(lambda: subprocess.run(["dvc", "repro", "-q"], cwd=copy, env=env, check=True))
    second, done = timed(lambda: subprocess.run(["dvc", "repro"], cwd=copy, env=env, check=True,
                                                capture_output=True, text=True))
    print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no output)")
    return first, second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--skip-dvc", action="store_true", help="leave out the dvc repro measurement")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.chdir(REPO)

    from prefect import flow

    from flows.adaptation import adaptation_flow
    from tasks.config import load_config

    base = load_config(args.params)

    @flow
    def warm_up() -> None:
        return None

    warm_up()  # start the ephemeral Prefect API before any timing
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="adaptflow-bench-") as scratch:
        root = Path(scratch)
        adaptation_flow(flow_config(base, root / "warm-up", tracking=False))  # page cache, lazy imports, kernels
        off, _ = timed(lambda: adaptation_flow(flow_config(base, root / "off", tracking=False)))
        on_config = flow_config(base, root / "on", tracking=True)
        on, summary = timed(lambda: adaptation_flow(on_config))
        rerun, again = timed(lambda: adaptation_flow(on_config))
        bare = bare_engine(on_config, root / "on")
        figures.update(flow_s=on, flow_tracking_off_s=off, tracking_s=summary["tracking_seconds"],
                       tracking_diff_s=on - off, rerun_s=rerun, rerun_fraction=rerun / on, bare_engine_s=bare,
                       overhead_s=on - bare, overhead_pct=100 * (on - bare) / bare,
                       rerun_tracking_s=again["tracking_seconds"])
        if not args.skip_dvc:
            first, noop = dvc_noop(root)
            figures.update(dvc_first_s=first, dvc_noop_s=noop)
    rounded = {key: round(value, 3) for key, value in figures.items()}
    rows = [("flow, tracking on (first run)", "flow_s"), ("flow, tracking off", "flow_tracking_off_s"),
            ("tracking, measured in the run", "tracking_s"), ("tracking, on - off", "tracking_diff_s"),
            ("bare engine (the fine-tunes + predictions)", "bare_engine_s"),
            ("pipeline overhead (flow - bare)", "overhead_s"), ("re-run, unchanged inputs", "rerun_s"),
            ("dvc repro, first", "dvc_first_s"), ("dvc repro, nothing changed", "dvc_noop_s")]
    print("| measure | seconds |\n|---|---|")
    for label, key in rows:
        if key in rounded:
            print(f"| {label} | {rounded[key]:.2f} |")
    print(f"\noverhead_pct {rounded['overhead_pct']:.1f}%  rerun_fraction {rounded['rerun_fraction']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(rounded, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
