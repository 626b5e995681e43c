"""`adaptflow sweep`: many candidate adaptations at once, as Prefect tasks on Dask (prefect-dask's DaskTaskRunner).

The shared upstream stages (validation, the similarity check) run once, cached as in `adaptflow run`; then every
candidate (a full config: the base with its `--set` values and seed) is one Prefect task on a Dask worker that runs
prepare -> fine-tune -> evaluate in its own output directory, asking for one `fine-tune` resource so two fine-tunes
never share a worker. The winner is picked on labelled target texts that are not the test set: the validation split,
or with at most 50 labelled target texts every one of them, out of fold (tasks.folds: each fold run is a task too);
then its test score is reported and it goes through the normal promotion gate. One MLflow parent run holds the results table and plot;
each candidate is a child run.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from flows.layout import layout_of, read_labels, read_role
from flows.prefect_tasks import TaskCalls
from flows.stages import similarity, validate
from flows.sweep_workspace import fold_runs, share_upstream
from tasks.config import AdaptflowConfig
from tasks.folds import SelectOn, pooled_macro_f1, use_kfold
from tasks.sweep_grid import expand, pick

log = logging.getLogger(__name__)
FINE_TUNE = "fine-tune"  # the Dask worker resource a candidate asks for


# The local cluster's workers get this Dask config from the process that starts them:
# - no environment from Dask's nanny: it starts worker processes with MALLOC_TRIM_THRESHOLD_=65536 and
#   OMP/MKL/OPENBLAS_NUM_THREADS=1; measured on 2 cores, a MiniLM fine-tune took 44 s in such a worker against
#   15-17 s in a plain process (torch threads set the same); with none of them, 17.5 s. Each candidate sets its own
#   torch threads. Start remote workers likewise: DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON='{}' dask worker ...
# - no statistical profiler: it samples the task threads' stacks every 10 ms for the dashboard, which a local cluster
#   does not serve, and with every core training it takes its time from the fine-tunes: on the 2-core Xeon, two
#   candidates side by side took 40.1-41.1 s each with it and 38.9-39.1 s without (BENCHMARKS.md, "Sweeps on Dask").
LOCAL_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ": {}, "distributed.worker.profile.enabled": False}


def dask_runner(address: str | None, workers: int):
    """A DaskTaskRunner: on the scheduler at `address`, else on a local cluster of `workers` one-thread processes,
    each with one `fine-tune` slot (and neither Dask's thread and allocator settings nor its profiler: see
    LOCAL_WORKER_CONFIG)."""
    import dask
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    dask.config.set(LOCAL_WORKER_CONFIG)  # read when the cluster spawns its workers, in this process
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                         "resources": {FINE_TUNE: 1}, "dashboard_address": None,
                                         "env": {"PREFECT_API_URL": api_url()}})


def api_url() -> str:
    """The Prefect API this process reports to: the configured one, or its ephemeral server (started here if it is
    not yet). Local workers get it, so the candidates' task runs and logs reach the flow's API and UI; without it
    each worker started an ephemeral server of its own that vanished with the worker, and ran its background
    services beside the fine-tune (BENCHMARKS.md, "Sweeps on Dask")."""
    from prefect.settings import get_current_settings

    if url := get_current_settings().api.url:
        return url
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the same instance Prefect's client uses for the ephemeral API
    server.start()
    return server.api_url


@task(name="fine-tune-candidate", retries=1, retry_delay_seconds=2, persist_result=False)
def run_candidate(config: AdaptflowConfig, candidate_id: str, threads: int) -> dict[str, Any]:
    """prepare -> train -> evaluate for one candidate, then its selection score on the target validation split.
    Retried once (a new attempt, on whichever worker is alive) when its worker dies."""
    from flows.stage_registry import run_stage
    from tasks.devices import torch_threads

    started, began = time.perf_counter(), time.time()
    with torch_threads(threads):
        prepared, _, report = (run_stage(config, name) for name in ("prepare", "train", "evaluate"))
        true, predicted = _validation_predictions(config)
    selection = pooled_macro_f1([(true, predicted)], read_labels(layout_of(config))) if true else None
    return {"id": candidate_id, "selection_macro_f1": selection, "selection_n": len(true),
            "validation": (true, predicted),
            "test_macro_f1": report.metrics["macro_f1"], "test_accuracy": report.metrics["accuracy"],
            "branch": prepared.branch, "strategies": prepared.strategies, "worker": _worker(),
            "seconds": round(time.perf_counter() - started, 1), "started_at": began, "ended_at": time.time()}


@task(name="fine-tune-fold", retries=1, retry_delay_seconds=2, persist_result=False)
def run_fold(config: AdaptflowConfig, threads: int) -> tuple[list[str], list[str]]:
    """One k-fold run of a candidate: prepare -> train without its fold, then (true, predicted) labels of the fold."""
    from flows.stage_registry import run_stage
    from tasks.devices import torch_threads

    with torch_threads(threads):
        for name in ("prepare", "train"):
            run_stage(config, name)
        return _validation_predictions(config)


def _validation_predictions(config: AdaptflowConfig) -> tuple[list[str], list[str]]:
    """The adapted model's labels for the target validation split: (true, predicted); empty without one."""
    from tasks.inference import predict
    from tasks.models import load_classifier, load_tokenizer

    layout = layout_of(config)
    validation, labels = read_role(layout, "target_validation"), read_labels(layout)
    if validation.empty:
        return [], []
    model_dir = str(layout.model("adapted"))
    predicted = predict(load_classifier(model_dir, labels), load_tokenizer(model_dir), validation["text"].tolist(),
                        config.model.max_length, config.evaluation.batch_size)
    return validation["label"].tolist(), list(predicted.labels)


def _worker() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


@flow(name="adaptflow-sweep-shared-stages", task_runner=ThreadPoolTaskRunner(max_workers=1))
def shared_stages(config: AdaptflowConfig) -> str:
    """Validation and the similarity check, once for every candidate (cached as in `adaptflow run`), in this
    process; returns the branch."""
    calls = TaskCalls(config)
    checked = calls.submit(validate.validate)
    calls.result(checked)
    return calls.result(calls.submit(similarity.similarity, checked)).branch


@flow(name="adaptflow-sweep", log_prints=True, timeout_seconds=24 * 3600)
def sweep_flow(config: AdaptflowConfig = AdaptflowConfig(), axes: dict[str, list[str]] | None = None,
               seeds: list[int] | None = None, threads: int = 1, select_on: SelectOn = "auto") -> dict[str, Any]:
    """Run every candidate of the grid `axes` (x `seeds`) on the flow's task runner; pick, report, register.
    `select_on`: the target validation split, k-fold over every labelled target text, or `auto` (k-fold with at
    most 50 of them)."""
    import dask

    candidates = expand(config, axes or {}, seeds)
    print(f"branch: {shared_stages(config)}; {len(candidates)} candidates")
    layout = layout_of(config)
    labelled, validation = (len(read_role(layout, name)) for name in ("target_labeled", "target_validation"))
    folds = {}
    for candidate in candidates:
        share_upstream(config, candidate.config)
        folds[candidate.id] = fold_runs(config, candidate.config) \
            if use_kfold(select_on, labelled + validation, validation) else []
    futures, fold_futures = {}, {}
    for candidate in candidates:
        with dask.annotate(resources={FINE_TUNE: 1}):
            futures[candidate.id] = run_candidate.with_options(task_run_name=f"candidate-{candidate.id}").submit(
                candidate.config, candidate.id, threads)
            fold_futures[candidate.id] = [
                run_fold.with_options(task_run_name=f"candidate-{candidate.id}-fold-{fold}").submit(run, threads)
                for fold, run in enumerate(folds[candidate.id], start=1)]
    results = {candidate.id: _collect(candidate, futures[candidate.id], fold_futures[candidate.id],
                                      read_labels(layout)) for candidate in candidates}
    winner = pick({name: result["selection_macro_f1"] for name, result in results.items()})
    print(f"winner: {winner} (selection macro-F1 {results[winner]['selection_macro_f1']:.4f}); "
          f"its target test macro-F1 {results[winner]['test_macro_f1']:.4f}")
    n, k = results[winner]["selection_n"], 1 + len(folds[winner])
    why = f"best macro-F1 over {k} folds of the {n} labelled target texts (each predicted by the candidate trained " \
        "without it)" if k > 1 else f"best macro-F1 on the target validation split (n={n})"
    summary = {"candidates": list(results.values()), "winner": winner, "why": why}
    _publish(config, summary)
    if config.tracking.enabled:
        from flows.sweep_tracking import track_sweep

        summary.update(track_sweep(config, {c.id: c for c in candidates}, summary))
    return summary


def _collect(candidate, future, fold_futures, labels: tuple[str, ...]) -> dict[str, Any]:
    """A candidate's result with its selection score (pooled over its folds when it has any); a candidate that
    failed, or one of whose folds failed (retries too), is reported with its error and cannot win."""
    try:
        result = {**future.result(), "overrides": candidate.overrides}
        parts = [result.pop("validation"), *(fold.result() for fold in fold_futures)]
    except Exception as error:  # the other candidates still finish
        log.error("candidate %s failed: %s", candidate.id, error)
        return {"id": candidate.id, "overrides": candidate.overrides, "error": str(error)[:500],
                "selection_macro_f1": None}
    if fold_futures:
        result["selection_macro_f1"] = pooled_macro_f1(parts, labels)
        result["selection_n"] = sum(len(true) for true, _ in parts)
    result["selection_folds"] = len(parts)
    return result


def _publish(config: AdaptflowConfig, summary: dict[str, Any]) -> None:
    """The results table as a Prefect table artifact and a PNG of the scores per candidate."""
    from prefect.artifacts import create_table_artifact

    from tasks.sweep_report import plot_scores, table_rows

    create_table_artifact(table_rows(summary), key="adaptflow-sweep",
                          description=f"Sweep candidates; winner {summary['winner']} ({summary['why']})")
    plot_scores(summary, Path(config.output.dir) / "sweep" / "scores.png")
