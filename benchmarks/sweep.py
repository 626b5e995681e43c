"""What a sweep buys: a 4-candidate sweep on 1 and on 2 local Dask workers, and its cost per candidate against a
lone run of the same stages.

    .venv/bin/python benchmarks/sweep.py [--params params.yaml] [--set KEY=VALUE ...] [--workers 1,2]
        [--threads-per-worker N] [--json PATH]

On the config (default: params.yaml, the embedded default with MiniLM), tracking off, in a scratch directory, the
grid train.learning_rate = 3e-5,5e-5 x seeds 0,1 (4 candidates):
  1. lone runs: validation and the similarity check, then each candidate's prepare -> train -> evaluate, one
     after another in this process with all the machine's cores (lone_shared_s, lone_candidates_s);
  2. the sweep on each worker count, from empty outputs (shared stages included): sweep_s[workers];
  3. a 2-candidate sweep (seed 0 only) on 1 worker: sweep_2_candidates_s.
  speedup = sweep_s[1] / sweep_s[2]; overhead_per_candidate_pct = what the 1-worker sweep spends beyond the
  shared stages and the 4 candidates' lone times, in percent of those (the machinery: Prefect task runs on Dask,
  the copies of the shared outputs, the selection scoring, the report). Steps 2 and 3 split that into a fixed
  cost per sweep (fixed_per_sweep_s: the ephemeral Prefect API, the cluster's start, the workers' imports) and
  what the two further candidates cost (marginal_candidates_s = 4-candidate - 2-candidate sweep) against their
  lone times: marginal_overhead_pct.
With --threads-per-worker N every worker, and the lone run, gets N torch threads (N=1: what one more worker buys
when each has a core of its own); by default each worker gets cores / workers and the lone run all of them.
Every figure names the machine (CPU model, cores) it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

AXES = {"train.learning_rate": ["3e-5", "5e-5"]}
SEEDS = [0, 1]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return f"{model}, {os.cpu_count()} cores"


def scratch_config(base, workdir: Path):
    config = base.model_copy(deep=True)
    config.output.dir = workdir / "outputs"
    config.similarity.cache_dir = workdir / "embeddings"
    config.tracking.enabled = False
    config.evaluation.baseline = False
    return config


def lone_run(base, workdir: Path, threads: int) -> tuple[float, dict[str, float]]:
    """(shared stages s, {candidate: s}): what `adaptflow run` does for each candidate, one after another in this
    process (candidates differ in cost: a higher learning rate makes more confident pseudo-labels, so a longer
    self-training round)."""
    import torch

    from flows.stage_registry import run_stage
    from flows.sweep_workspace import share_upstream
    from tasks.sweep_grid import expand

    torch.set_num_threads(threads)
    config = scratch_config(base, workdir)
    started = time.perf_counter()
    for name in ("validate", "similarity"):
        run_stage(config, name)
    shared = time.perf_counter() - started
    seconds = {}
    for candidate in expand(config, AXES, SEEDS):
        share_upstream(config, candidate.config)
        started = time.perf_counter()
        for name in ("prepare", "train", "evaluate"):
            run_stage(candidate.config, name)
        seconds[candidate.id] = round(time.perf_counter() - started, 2)
    return shared, seconds


def sweep_run(base, workdir: Path, workers: int, threads: int, seeds: list[int] = SEEDS) -> float:
    from flows.sweeping import dask_runner, sweep_flow

    config = scratch_config(base, workdir)
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    started = time.perf_counter()
    sweep_flow.with_options(task_runner=dask_runner(None, workers))(config, AXES, seeds, threads, "validation")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    parser.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    parser.add_argument("--threads-per-worker", type=int, default=0, help="torch threads of each worker and of the "
                        "lone run (default: cores / workers, the lone run all cores)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    from tasks.config import load_config

    base = load_config(args.params if args.params.is_file() else None, args.overrides)
    counts = [int(count) for count in args.workers.split(",")]
    figures: dict = {"machine": machine(), "candidates": len(SEEDS) * len(AXES["train.learning_rate"]),
                     "overrides": args.overrides, "threads_per_worker": args.threads_per_worker or "cores / workers",
                     "sweep_s": {}}
    root = Path(tempfile.mkdtemp(prefix="adaptflow-sweep-bench-"))
    try:
        lone_threads = args.threads_per_worker or os.cpu_count() or 1
        shared, figures["lone_candidates_s"] = lone_run(base, root / "lone", lone_threads)
        figures["lone_shared_s"] = round(shared, 2)
        print(f"lone runs: shared stages {figures['lone_shared_s']} s, candidates {figures['lone_candidates_s']}",
              flush=True)
        for count in counts:
            figures["sweep_s"][count] = round(sweep_run(base, root / f"sweep-{count}", count,
                                                        args.threads_per_worker), 2)
            print(f"sweep of {figures['candidates']} on {count} worker(s): {figures['sweep_s'][count]} s", flush=True)
            _write(args.json, figures)
        if 1 in counts:
            figures["sweep_2_candidates_s"] = round(sweep_run(base, root / "sweep-2-candidates", 1,
                                                              args.threads_per_worker, SEEDS[:1]), 2)
            print(f"sweep of 2 on 1 worker: {figures['sweep_2_candidates_s']} s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures.update(ratios(figures))
    _write(args.json, figures)
    print(json.dumps(figures, indent=2))


def ratios(figures: dict) -> dict:
    """The speed-up of 2 workers over 1, and what the 1-worker sweep spends beyond the shared stages and the same
    candidates run alone, in percent of those candidates' lone time: in all, and for the 2 candidates a 4-candidate
    sweep has beyond a 2-candidate one (the fixed cost of a sweep left out)."""
    sweeps, lone = figures["sweep_s"], figures["lone_candidates_s"]
    out = {}
    if 1 in sweeps and 2 in sweeps:
        out["speedup_2_workers"] = round(sweeps[1] / sweeps[2], 3)
    if 1 in sweeps:
        extra = sweeps[1] - figures["lone_shared_s"] - sum(lone.values())
        out["overhead_per_candidate_pct"] = round(100 * extra / sum(lone.values()), 1)
    if 1 in sweeps and "sweep_2_candidates_s" in figures:
        later = [seconds for name, seconds in lone.items() if not name.endswith(f"seed-{SEEDS[0]}")]
        marginal = sweeps[1] - figures["sweep_2_candidates_s"]
        out["marginal_candidates_s"] = round(marginal, 2)
        out["marginal_overhead_pct"] = round(100 * (marginal / sum(later) - 1), 1)
        out["fixed_per_sweep_s"] = round(extra - (marginal - sum(later)), 2)
    return out


def _write(path: Path | None, figures: dict) -> None:
    if path is not None:
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(figures, indent=2))
        temp.replace(path)


if __name__ == "__main__":
    main()
