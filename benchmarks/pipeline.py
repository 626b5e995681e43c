"""What the pipeline costs on top of the bare engine, what a re-run with unchanged inputs costs, and `dvc repro` idle.

    .venv/bin/python benchmarks/pipeline.py [--params params.yaml] [--repeats 2] [--json PATH] [--skip-dvc]

On the embedded default data (params.yaml), in a scratch directory, every flow run as `adaptflow run` runs it (in
`flows.console.local_run`: on this process's ephemeral Prefect API, no flow-run heartbeats):
  0. one tracked flow run, timed but not compared (`first_run_s`): it starts the ephemeral Prefect API, imports
     what the flow imports, creates the MLflow store (its schema migrations, once per store) and registers the
     model's first version. A scheduled run finds the Prefect API up and the store there; the figures below are
     for such a run.
  1. `--repeats` rounds, each of: the flow with tracking off, the flow with tracking on (into the store of step 0:
     a second version goes through the champion/challenger gate), and the bare engine on the data that tracked
     run prepared: the training the flow does (the two fine-tunes, with the shift branch's self-training round)
     and the target-test predictions, nothing else. Every flow run starts with empty outputs, embedding cache and
     ONNX export cache (where `inference.backend` resolves to ONNX, the registered model's int8 export is made
     again, as for any newly trained model; where it resolves to torch, as `auto` does on a bf16 CPU, none is made
     and the JSON's `backend` says so). The three are interleaved so that a slow spell of the host hits all of
     them (every round's times are in the JSON). The flow and the bare engine run the same training function, `fine_tune` as the train stages
     (`flows.stages.train`) call it, and the time spent in it is clocked in both: on this shared 2-core host the
     same training varies by up to 10 % from run to run, more than the overhead itself, so the overhead is
     measured paired, outside the training:
       overhead_s = (flow, tracking on - its training) - (bare - its training), per round; the largest round's
       overhead_pct = overhead_s / bare: validation, similarity, orchestration, tracking, reports, evaluation
       beyond the target-test predictions. `wall_diff_s` is the plain difference of the fastest flow and the
       fastest bare run, noise included.
  2. the last tracked flow again, nothing changed: cached stages (rerun_fraction = this run / flow, tracking on),
  3. `dvc repro` twice in a copy of the repo; the second, with nothing changed, is `dvc_noop_s`.
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


def timed(action, *args):
    started = time.perf_counter()
    result = action(*args)
    return time.perf_counter() - started, result


def flow_config(base, workdir: Path, tracking: bool, store: Path):
    config = base.model_copy(deep=True)
    config.output.dir = workdir / "outputs"
    config.similarity.cache_dir = workdir / "embeddings"
    config.inference.cache_dir = workdir / "onnx"  # the registered model's int8 export, made again each run
    config.tracking.enabled = tracking
    config.tracking.uri = f"sqlite:///{store}"
    return config


class TrainClock:
    """Wall time spent in `fine_tune`, the engine's training function, as `flows.stages.train` calls it.

    Every training step of the train stages (the baseline, the adapted model's first round, self-training's second
    round) looks `fine_tune` up as a global of `flows.stages.train` when it runs, so replacing that global clocks
    the fine-tunes of the flow's tasks (built from those functions at import, in threads of this process) and of
    the bare engine alike. Pseudo-labelling, a prediction pass between the rounds, is outside the clock in both."""

    def __init__(self) -> None:
        from flows.stages import train

        self.seconds = 0.0
        original = train.fine_tune

        def clocked(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        train.fine_tune = clocked

    def lap(self) -> float:
        """Seconds clocked since the last lap."""
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def in_worker_thread(action, *args):
    """`action(*args)` in a new thread, as a flow runs its tasks in the threads of a new task runner.

    Not in the main thread: with torch's OpenMP backend (libgomp), once the main thread has run a parallel region,
    every later fine-tune in a new thread of the process ran about 1.5x slower on this 2-core host (4.2 s -> 6.4 s for
    one epoch on 400 texts, while the main thread stayed at 4.2 s), so a bare engine in the main thread slowed the
    flows of every later round and the overhead outside their training with them."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(action, *args).result()


def bare_engine(config, workdir: Path) -> float:
    """The training and predicting the flow does, without the flow: the baseline and adapted models trained by the
    train stages' functions (`fine_tune_baseline`, and `train`: the first round, then in the shift branch
    pseudo-labelling and the second round, the steps the flow runs as separate tasks) on a copy of the data the
    flow prepared, then the target-test predictions of both models. No validation, similarity, orchestration,
    tracking, plots or reports."""
    from flows.layout import layout_of, read_labels, read_role
    from flows.stage_registry import BY_NAME
    from flows.stages import train
    from tasks.devices import placement
    from tasks.inference import predict
    from tasks.models import load_classifier, load_tokenizer

    flow_layout = layout_of(config)
    validation, prepared = BY_NAME["validate"].load(flow_layout), BY_NAME["prepare"].load(flow_layout)
    bare = config.model_copy(deep=True)
    bare.output.dir = workdir / "bare"
    for part in ("data", "similarity", "training_set"):  # the flow's inputs to training, nothing it trained
        shutil.copytree(flow_layout.root / part, bare.output.dir / part)
    layout = layout_of(bare)
    test, labels = read_role(layout, "target_test"), read_labels(layout)
    device, precision = placement(config.train)
    started = time.perf_counter()
    for trained in (train.fine_tune_baseline(bare, validation, progress=False),
                    train.train(bare, validation, prepared, progress=False)):
        predict(load_classifier(trained.model_dir, labels).to(device), load_tokenizer(trained.model_dir),
                test["text"].tolist(), config.model.max_length, config.evaluation.batch_size, precision)
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
    parser.add_argument("--repeats", type=int, default=2, help="rounds of (tracking off, tracking on, bare); "
                        "times are the fastest round's, the overhead the largest round's (default 2)")
    parser.add_argument("--skip-dvc", action="store_true", help="leave out the dvc repro measurement")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: needs at least 1 round")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.chdir(REPO)

    from prefect import flow

    from flows.adaptation import adaptation_flow
    from flows.console import local_run
    from tasks.config import load_config

    def run_flow(config):
        """The flow as `adaptflow run` runs it (flows.cli.cmd_run): in `flows.console.local_run`'s settings (on
        this ephemeral API, no flow-run heartbeats)."""
        with local_run():
            return adaptation_flow(config)

    base = load_config(args.params)

    @flow
    def warm_up() -> None:
        return None

    warm_up()  # start the ephemeral Prefect API before any timing
    figures: dict[str, float] = {}
    runs: dict[str, list[float]] = {key: [] for key in (
        "flow_s", "flow_train_s", "flow_tracking_off_s", "flow_tracking_off_train_s", "bare_engine_s",
        "bare_train_s", "tracking_s", "overhead_s", "overhead_pct")}
    clock = TrainClock()
    with tempfile.TemporaryDirectory(prefix="adaptflow-bench-") as scratch:
        root = Path(scratch)
        store = root / "mlruns.db"
        figures["first_run_s"], _ = timed(run_flow, flow_config(base, root / "first", True, store))
        clock.lap()
        for index in range(args.repeats):
            off, _ = timed(run_flow, flow_config(base, root / f"off-{index}", False, store))
            off_train = clock.lap()
            on_config = flow_config(base, root / f"on-{index}", True, store)
            on, summary = timed(run_flow, on_config)
            on_train = clock.lap()
            bare = in_worker_thread(bare_engine, on_config, root / f"on-{index}")
            bare_train = clock.lap()
            overhead = (on - on_train) - (bare - bare_train)
            for key, value in (("flow_s", on), ("flow_train_s", on_train), ("flow_tracking_off_s", off),
                               ("flow_tracking_off_train_s", off_train), ("bare_engine_s", bare),
                               ("bare_train_s", bare_train), ("tracking_s", summary["tracking_seconds"]),
                               ("overhead_s", overhead), ("overhead_pct", 100 * overhead / bare)):
                runs[key].append(value)
            print(f"round {index + 1}: flow {on:.1f} s (training {on_train:.1f} s, tracking "
                  f"{summary['tracking_seconds']:.1f} s), tracking off {off:.1f} s (training {off_train:.1f} s), "
                  f"bare {bare:.1f} s (training {bare_train:.1f} s): overhead {overhead:.1f} s", flush=True)
        rerun, again = timed(run_flow, on_config)
        worst = max(range(args.repeats), key=lambda index: runs["overhead_pct"][index])
        outside = [(on - train) - (off - off_train) for on, train, off, off_train in zip(
            runs["flow_s"], runs["flow_train_s"], runs["flow_tracking_off_s"], runs["flow_tracking_off_train_s"])]
        figures.update(flow_s=min(runs["flow_s"]), flow_tracking_off_s=min(runs["flow_tracking_off_s"]),
                       tracking_s=max(runs["tracking_s"]), tracking_diff_s=sum(outside) / len(outside),
                       rerun_s=rerun, rerun_fraction=rerun / min(runs["flow_s"]),
                       bare_engine_s=min(runs["bare_engine_s"]), flow_train_s=runs["flow_train_s"][worst],
                       bare_train_s=runs["bare_train_s"][worst], overhead_s=runs["overhead_s"][worst],
                       overhead_pct=runs["overhead_pct"][worst],
                       wall_diff_s=min(runs["flow_s"]) - min(runs["bare_engine_s"]),
                       rerun_tracking_s=again["tracking_seconds"])
        if not args.skip_dvc:
            first, noop = dvc_noop(root)
            figures.update(dvc_first_s=first, dvc_noop_s=noop)
    rounded: dict = {key: round(value, 3) for key, value in figures.items()}
    rows = [("first run (cold: Prefect API, imports, new MLflow store)", "first_run_s"),
            ("flow, tracking on", "flow_s"), ("flow, tracking off", "flow_tracking_off_s"),
            ("tracking, measured in the run", "tracking_s"),
            ("tracking, on - off (outside the training, mean of rounds)", "tracking_diff_s"),
            ("bare engine (the fine-tunes + predictions)", "bare_engine_s"),
            ("training inside the flow (round with the largest overhead)", "flow_train_s"),
            ("training inside the bare engine (same round)", "bare_train_s"),
            ("pipeline overhead, paired outside the training (largest round)", "overhead_s"),
            ("flow - bare, fastest runs (noise included)", "wall_diff_s"), ("re-run, unchanged inputs", "rerun_s"),
            ("dvc repro, first", "dvc_first_s"), ("dvc repro, nothing changed", "dvc_noop_s")]
    print("| measure | seconds |\n|---|---|")
    for label, key in rows:
        if key in rounded:
            print(f"| {label} | {rounded[key]:.2f} |")
    print(f"\noverhead_pct {rounded['overhead_pct']:.1f}%  rerun_fraction {rounded['rerun_fraction']:.3f}")
    from tasks.devices import placement
    from tasks.onnx_inference import resolve_backend

    rounded["backend"] = resolve_backend(base.inference.backend, *placement(base.train))
    print(f"inference backend {rounded['backend']} (inference.backend: {base.inference.backend})")
    if args.json:
        rounded["rounds"] = {key: [round(value, 3) for value in values] for key, values in runs.items()}
        args.json.write_text(json.dumps(rounded, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
