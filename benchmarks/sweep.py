"""What a sweep buys: a 4-candidate sweep on 1 and on 2 local Dask workers, and its cost per candidate against a
lone run of the same stages.

    .venv/bin/python benchmarks/sweep.py [--params params.yaml] [--set KEY=VALUE ...] [--workers 1,2] [--json PATH]

On the config (default: params.yaml, the embedded default with MiniLM), tracking off, in a scratch directory, the
grid train.learning_rate = 3e-5,5e-5 x seeds 0,1 (4 candidates):
  1. a lone run: validation and the similarity check, then one candidate's prepare -> train -> evaluate, in this
     process with all the machine's cores (lone_shared_s, lone_candidate_s);
  2. the sweep on each worker count, from empty outputs (shared stages included): sweep_s[workers].
  speedup = sweep_s[1] / sweep_s[2]; overhead_per_candidate_pct = what the 1-worker sweep spends beyond the
  shared stages and 4 lone candidates, per candidate, against a lone candidate (the machinery: Prefect task runs
  on Dask, the copies of the shared outputs, the selection scoring, the report).
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


def lone_run(base, workdir: Path) -> tuple[float, float]:
    """(shared stages s, one candidate s): what `adaptflow run` does for one candidate, in this process."""
    import torch

    from flows.stage_registry import run_stage
    from tasks.sweep_grid import expand

    torch.set_num_threads(os.cpu_count() or 1)
    config = scratch_config(base, workdir)
    started = time.perf_counter()
    for name in ("validate", "similarity"):
        run_stage(config, name)
    shared = time.perf_counter() - started
    (candidate, *_) = expand(config, AXES, SEEDS)
    from flows.sweep_workspace import share_upstream

    share_upstream(config, candidate.config)
    started = time.perf_counter()
    for name in ("prepare", "train", "evaluate"):
        run_stage(candidate.config, name)
    return shared, time.perf_counter() - started


def sweep_run(base, workdir: Path, workers: int) -> float:
    from flows.sweeping import dask_runner, sweep_flow

    config = scratch_config(base, workdir)
    threads = max(1, (os.cpu_count() or 1) // workers)
    started = time.perf_counter()
    sweep_flow.with_options(task_runner=dask_runner(None, workers))(config, AXES, SEEDS, threads, "validation")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    parser.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    from tasks.config import load_config

    base = load_config(args.params if args.params.is_file() else None, args.overrides)
    counts = [int(count) for count in args.workers.split(",")]
    figures: dict = {"machine": machine(), "candidates": len(SEEDS) * len(AXES["train.learning_rate"]),
                     "overrides": args.overrides, "sweep_s": {}}
    root = Path(tempfile.mkdtemp(prefix="adaptflow-sweep-bench-"))
    try:
        figures["lone_shared_s"], figures["lone_candidate_s"] = (round(x, 2) for x in lone_run(base, root / "lone"))
        print(f"lone run: shared stages {figures['lone_shared_s']} s, one candidate {figures['lone_candidate_s']} s",
              flush=True)
        for count in counts:
            figures["sweep_s"][count] = round(sweep_run(base, root / f"sweep-{count}", count), 2)
            print(f"sweep of {figures['candidates']} on {count} worker(s): {figures['sweep_s'][count]} s", flush=True)
            _write(args.json, figures)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures.update(ratios(figures))
    _write(args.json, figures)
    print(json.dumps(figures, indent=2))


def ratios(figures: dict) -> dict:
    """The speed-up of 2 workers over 1 and the 1-worker sweep's overhead per candidate (percent of a lone one)."""
    sweeps, n = figures["sweep_s"], figures["candidates"]
    out = {}
    if 1 in sweeps and 2 in sweeps:
        out["speedup_2_workers"] = round(sweeps[1] / sweeps[2], 3)
    if 1 in sweeps:
        extra = sweeps[1] - figures["lone_shared_s"] - n * figures["lone_candidate_s"]
        out["overhead_per_candidate_pct"] = round(100 * extra / n / figures["lone_candidate_s"], 1)
    return out


def _write(path: Path | None, figures: dict) -> None:
    if path is not None:
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(figures, indent=2))
        temp.replace(path)


if __name__ == "__main__":
    main()
