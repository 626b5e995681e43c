"""`adaptflow sweep`: many candidate adaptations at once, as Prefect tasks on Dask (prefect-dask's DaskTaskRunner).

The shared upstream stages (validation, the similarity check) run once, cached as in `adaptflow run`; then every
candidate (a full config: the base with its `--set` values and seed) is one Prefect task on a Dask worker that runs
prepare -> fine-tune -> evaluate in its own output directory, asking for one `fine-tune` resource so two fine-tunes
never share a worker. The winner is picked on the target validation split (never the test set), then its test score
is reported and it goes through the normal promotion gate. One MLflow parent run holds the results table and plot;
each candidate is a child run.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from flows.layout import layout_of, read_labels, read_role
from flows.prefect_tasks import TaskCalls
from flows.stages import similarity, validate
from tasks.config import AdaptflowConfig
from tasks.sweep_grid import expand, pick

log = logging.getLogger(__name__)
SHARED_DIRS = ("data", "validation", "similarity")  # what the shared upstream stages wrote
FINE_TUNE = "fine-tune"  # the Dask worker resource a candidate asks for


# Dask's nanny starts worker processes with MALLOC_TRIM_THRESHOLD_=65536 and OMP/MKL/OPENBLAS_NUM_THREADS=1: measured
# on 2 cores, a MiniLM fine-tune took 44 s in such a worker against 15-17 s in a plain process (torch threads set
# the same); with none of them, 17.5 s. Each candidate sets its own torch threads, so local workers start without
# them; start remote ones likewise: DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON='{}' dask worker ...
WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ": {}}


def dask_runner(address: str | None, workers: int):
    """A DaskTaskRunner: on the scheduler at `address`, else on a local cluster of `workers` one-thread processes,
    each with one `fine-tune` slot (and no thread or allocator settings of Dask's: see WORKER_ENVIRON)."""
    import dask
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    dask.config.set(WORKER_ENVIRON)  # read when the cluster spawns its workers, in this process
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                         "resources": {FINE_TUNE: 1}, "dashboard_address": None})


@task(name="fine-tune-candidate", retries=1, retry_delay_seconds=2, persist_result=False)
def run_candidate(config: AdaptflowConfig, candidate_id: str, threads: int) -> dict[str, Any]:
    """prepare -> train -> evaluate for one candidate, then its selection score on the target validation split.
    Retried once (a new attempt, on whichever worker is alive) when its worker dies."""
    import torch

    from flows.stage_registry import run_stage
    from tasks.evaluation import compute_metrics
    from tasks.inference import predict
    from tasks.models import load_classifier, load_tokenizer

    torch.set_num_threads(threads)
    started, began = time.perf_counter(), time.time()
    prepared, _, report = (run_stage(config, name) for name in ("prepare", "train", "evaluate"))
    layout = layout_of(config)
    validation, labels = read_role(layout, "target_validation"), read_labels(layout)
    selection = None
    if len(validation):
        model_dir = str(layout.model("adapted"))
        predicted = predict(load_classifier(model_dir, labels), load_tokenizer(model_dir),
                            validation["text"].tolist(), config.model.max_length, config.evaluation.batch_size)
        selection = compute_metrics(validation["label"].tolist(), predicted.labels, labels)["macro_f1"]
    return {"id": candidate_id, "selection_macro_f1": selection, "selection_n": len(validation),
            "test_macro_f1": report.metrics["macro_f1"], "test_accuracy": report.metrics["accuracy"],
            "branch": prepared.branch, "strategies": prepared.strategies, "worker": _worker(),
            "seconds": round(time.perf_counter() - started, 1), "started_at": began, "ended_at": time.time()}


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
               seeds: list[int] | None = None, threads: int = 1) -> dict[str, Any]:
    """Run every candidate of the grid `axes` (x `seeds`) on the flow's task runner; pick, report, register."""
    import dask

    candidates = expand(config, axes or {}, seeds)
    print(f"branch: {shared_stages(config)}; {len(candidates)} candidates")
    for candidate in candidates:
        _share_upstream(config, candidate.config)
    futures = {}
    for candidate in candidates:
        with dask.annotate(resources={FINE_TUNE: 1}):
            futures[candidate.id] = run_candidate.with_options(task_run_name=f"candidate-{candidate.id}").submit(
                candidate.config, candidate.id, threads)
    results = {}
    for candidate in candidates:
        try:
            results[candidate.id] = {**futures[candidate.id].result(), "overrides": candidate.overrides}
        except Exception as error:  # a candidate that failed (its retry too) leaves the others to finish
            log.error("candidate %s failed: %s", candidate.id, error)
            results[candidate.id] = {"id": candidate.id, "overrides": candidate.overrides, "error": str(error)[:500],
                                     "selection_macro_f1": None}
    winner = pick({name: result["selection_macro_f1"] for name, result in results.items()})
    print(f"winner: {winner} (validation macro-F1 {results[winner]['selection_macro_f1']:.4f}); "
          f"its target test macro-F1 {results[winner]['test_macro_f1']:.4f}")
    summary = {"candidates": list(results.values()), "winner": winner,
               "why": f"best macro-F1 on the target validation split (n={results[winner]['selection_n']})"}
    _publish(config, summary)
    if config.tracking.enabled:
        from flows.sweep_tracking import track_sweep

        summary.update(track_sweep(config, {c.id: c for c in candidates}, summary))
    return summary


def _share_upstream(base: AdaptflowConfig, candidate: AdaptflowConfig) -> None:
    """The shared stages' outputs, copied into the candidate's output directory (read by its later stages)."""
    source, target = layout_of(base).root, layout_of(candidate).root
    for name in SHARED_DIRS:
        if (target / name).exists():
            shutil.rmtree(target / name)
        shutil.copytree(source / name, target / name)


def _publish(config: AdaptflowConfig, summary: dict[str, Any]) -> None:
    """The results table as a Prefect table artifact and a PNG of the scores per candidate."""
    from prefect.artifacts import create_table_artifact

    from tasks.sweep_report import plot_scores, table_rows

    create_table_artifact(table_rows(summary), key="adaptflow-sweep",
                          description=f"Sweep candidates; winner {summary['winner']} ({summary['why']})")
    plot_scores(summary, Path(config.output.dir) / "sweep" / "scores.png")
