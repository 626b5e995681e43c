"""The stage functions as Prefect tasks, one per registry step, and the cache-aware way the flow submits them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.utilities.annotations import opaque, quote

from flows import stage_registry as registry
from flows.caching import StageCache, clear_stamp, outputs_match, write_stamp
from flows.run_logs import send_engine_logs_to_prefect
from tasks.config import AdaptflowConfig
from tasks.errors import AdaptflowError

send_engine_logs_to_prefect()  # a fine-tune's progress lines in the run's log view


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O hiccups, not problems with the user's data or config (those fail the same way every time)."""
    try:
        state.result()
    except AdaptflowError:
        return False
    except Exception:
        return True
    return False


def as_task(step: registry.Step) -> Any:
    """A Prefect task named as the registry says; cached steps persist their results, I/O steps retry."""
    options: dict[str, Any] = {"name": step.task, "persist_result": True}
    options.update({"cache_expiration": None} if step.cached else {"cache_policy": NO_CACHE})
    if step.io_retries:
        options.update(retries=2, retry_delay_seconds=5, retry_condition_fn=_transient)
    return task(**options)(step.fn)


TASKS = {step.fn: as_task(step) for stage in registry.STAGES for step in stage.steps}


class TaskCalls:
    """Submits steps with their cache keys and records, once a step's result is in, the stamp that vouches for
    its outputs; logs results to the run's tracker."""

    def __init__(self, config: AdaptflowConfig, tracker: Any = None) -> None:
        self.config, self.tracker = config, tracker
        self.cache = StageCache(config)
        self.stamps: dict[Any, tuple[str, str]] = {}
        self.stages: dict[Any, str] = {}
        self.results: dict[str, Any] = {}
        self.cacheable: list[PrefectFuture] = []  # the submitted runs of cached steps

    def submit(self, fn: Callable[..., Any], *upstream: Any) -> PrefectFuture:
        """Submit the task of stage function `fn` with the config and its upstream futures.

        The futures alone make the run graph's edges. Everything else is passed quoted: Prefect links an argument to
        an earlier task run when any value inside it is the very object that run returned (a branch name, a
        threshold), which would draw arrows from tasks the config merely shares a string with. The futures are
        passed opaque: Prefect still waits for each and records it as an input, but does not take an upstream task
        that is still running at submission for the new task's parent (which would nest the new task inside it in
        the UI's graph)."""
        stage, step = registry.stage_of(fn)
        upstream = tuple(opaque(item) if isinstance(item, PrefectFuture) else quote(item) for item in upstream)
        if step.cached:
            key = self.cache.key(stage.name, step.task)
            fresh = outputs_match(self.config, step.task, key)
            clear_stamp(self.config, step.task)  # a step that fails part-way must leave no stamp vouching for it
            future = TASKS[fn].with_options(cache_key_fn=lambda *_: key, refresh_cache=not fresh).submit(
                quote(self.config), *upstream)
            self.stamps[future.task_run_id] = (step.task, key)
            self.cacheable.append(future)
        else:
            future = TASKS[fn].submit(quote(self.config), *upstream)
        self.stages[future.task_run_id] = stage.name
        return future

    def result(self, future: PrefectFuture, track: bool = False) -> Any:
        """The step's result (its error raised); with `track`, logged as its stage's result."""
        value = future.result()
        if future.task_run_id in self.stamps:
            write_stamp(self.config, *self.stamps.pop(future.task_run_id))
        if track:
            name = self.stages[future.task_run_id]
            self.results[name] = value
            if self.tracker is not None:
                registry.track_result(self.tracker, self.config, name, value, self.results)
        return value

    def all_cached(self) -> bool:
        """Every cached step submitted so far finished and came from Prefect's cache (none ran)."""
        return bool(self.cacheable) and all(future.state.name == "Cached" for future in self.cacheable)
