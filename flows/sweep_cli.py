"""`adaptflow sweep`: its options and what it prints (the flow is `flows.sweeping.sweep_flow`)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def add_sweep_parser(commands: argparse._SubParsersAction, params: Path) -> argparse.ArgumentParser:
    sweep = commands.add_parser("sweep", help="run many candidates in parallel on Dask; pick one on validation data",
                                description="Every combination of the --set values (times --seeds) is a candidate: "
                                "the shared stages run once, each candidate's fine-tune and evaluation run as Prefect "
                                "tasks on Dask; the winner is picked on labelled target texts other than the test "
                                "set (the validation split, or k-fold over all of them) and registered.")
    sweep.add_argument("--params", type=Path, default=None, help=f"base params file (default: ./{params} if present)")
    sweep.add_argument("--set", action="append", default=[], dest="axes", metavar="KEY=V1,V2",
                       help="one axis of the grid, e.g. --set train.learning_rate=1e-4,3e-4 (repeatable)")
    sweep.add_argument("--seeds", default=None, metavar="0,1,2", help="seeds of each combination (train.seed)")
    sweep.add_argument("--address", default=None, metavar="tcp://HOST:PORT",
                       help="a running Dask scheduler (default: a local cluster of --workers processes)")
    sweep.add_argument("--workers", type=int, default=2, help="local Dask worker processes (default 2)")
    sweep.add_argument("--threads", type=int, default=None,
                       help="torch threads per candidate (default: this machine's cores / --workers)")
    sweep.add_argument("--select-on", choices=("auto", "validation", "kfold"), default="auto",
                       help="what picks the winner: the target validation split, or every labelled target text out "
                       "of fold (k-fold: each candidate also trains once per fold); auto = k-fold with at most 50 "
                       "labelled target texts (default)")
    sweep.add_argument("--json", action="store_true", help="print one JSON object with the candidates and the pick")
    return sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    from flows.cli import DEFAULT_PARAMS
    from flows.console import local_run
    from flows.sweeping import dask_runner, sweep_flow
    from tasks.config import load_config
    from tasks.errors import ConfigError
    from tasks.sweep_grid import parse_axes

    params = args.params if args.params is not None else (DEFAULT_PARAMS if DEFAULT_PARAMS.is_file() else None)
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds!r}: expected integers, e.g. --seeds 0,1,2") from None
    threads = args.threads or max(1, (os.cpu_count() or 1) // max(1, args.workers))
    runner = dask_runner(args.address, args.workers)
    with local_run():
        summary = sweep_flow.with_options(task_runner=runner)(load_config(params), parse_axes(args.axes), seeds,
                                                             threads, args.select_on)
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        for result in summary["candidates"]:
            scores = (f"selection macro-F1 {result['selection_macro_f1']:.4f}, test {result['test_macro_f1']:.4f}"
                      if result.get("selection_macro_f1") is not None else f"failed: {result.get('error')}")
            print(f"{result['id']}: {scores}")
        print(f"winner: {summary['winner']} ({summary['why']})")
    return 0
