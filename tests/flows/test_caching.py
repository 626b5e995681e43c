"""Re-runs reuse what did not change: stage cache keys, Prefect's cached task states, and the stamps that keep a
cached result from vouching for files something else overwrote."""

from __future__ import annotations

from flows import caching
from flows.stage_registry import STAGE_NAMES


def test_a_stage_key_changes_with_what_it_and_its_upstream_read_and_nothing_else(tiny_config):
    cache = caching.StageCache(tiny_config)
    before = {stage: cache.key(stage) for stage in STAGE_NAMES}
    tiny_config.train.epochs = 1
    after = {stage: caching.StageCache(tiny_config).key(stage) for stage in STAGE_NAMES}
    assert [stage for stage in STAGE_NAMES if before[stage] != after[stage]] == [
        "train-baseline", "train", "evaluate", "register"]
    tiny_config.output.dir = tiny_config.output.dir / "elsewhere"  # where outputs go is not what they are
    assert caching.StageCache(tiny_config).key("train") == after["train"]


def test_the_key_is_pure_in_params_data_and_code():
    key = caching.stage_key("train", {"train.epochs": 2}, {"source": "abc"}, "code1")
    assert key == caching.stage_key("train", {"train.epochs": 2}, {"source": "abc"}, "code1")
    assert key != caching.stage_key("train", {"train.epochs": 2}, {"source": "abd"}, "code1")
    assert key != caching.stage_key("train", {"train.epochs": 2}, {"source": "abc"}, "code2")


def _task_states(state, settle_s: float = 60.0) -> dict[str, str]:
    """Each task run's final state name as the Prefect server records it.

    Task-run states reach the server as events, so right after the flow returns a task can still read `Running`
    on a busy machine: poll until every state is final (or `settle_s` passes, and the test sees what is there)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + settle_s
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
            if all(run.state.is_final() for run in runs) or time.monotonic() > deadline:
                return {run.name.rsplit("-", 1)[0]: run.state.name for run in runs}
            time.sleep(0.5)


def test_a_rerun_with_unchanged_inputs_reuses_every_stage_and_a_changed_param_reruns_only_its_stages(
        prefect_harness, tiny_config):
    from flows.adaptation import adaptation_flow

    tiny_config.tracking.enabled = False
    tiny_config.strategy.branch = "joint_training"
    first = adaptation_flow(tiny_config, return_state=True)
    assert set((states := _task_states(first)).values()) == {"Completed"}, states
    second = adaptation_flow(tiny_config, return_state=True)
    assert set((states := _task_states(second)).values()) == {"Cached"}, states
    assert second.result()["metrics"] == first.result()["metrics"]

    tiny_config.train.epochs = 1
    third = _task_states(adaptation_flow(tiny_config, return_state=True))
    assert {third[name] for name in ("validate-data", "check-similarity", "joint-training")} == {"Cached"}
    assert {third[name] for name in ("fine-tune-baseline", "fine-tune-adapted", "evaluate-target")} == {"Completed"}


def test_a_rerun_of_a_self_training_run_reuses_its_first_round_and_pseudo_labels_too(prefect_harness, tiny_config):
    from flows.adaptation import adaptation_flow

    tiny_config.tracking.enabled = False
    tiny_config.evaluation.baseline = False
    tiny_config.strategy.branch = "shift_adaptation"
    tiny_config.strategy.shift_strategies = ["pseudo_labeling"]
    first = _task_states(adaptation_flow(tiny_config, return_state=True))
    assert {"fine-tune-adapted", "pseudo-label", "fine-tune-round-2"} <= set(first), first
    second = _task_states(adaptation_flow(tiny_config, return_state=True))
    assert set(second.values()) == {"Cached"}, second


def test_outputs_rewritten_outside_the_flow_are_recomputed_not_trusted(prefect_harness, tiny_config):
    from flows.adaptation import adaptation_flow

    tiny_config.tracking.enabled = False
    adaptation_flow(tiny_config)
    caching.write_stamp(tiny_config, "check-similarity", "written-by-something-else")
    (tiny_config.output.dir / "reports" / "metrics.json").unlink()
    caching.clear_stamp(tiny_config, "evaluate-target")
    states = _task_states(adaptation_flow(tiny_config, return_state=True))
    assert states["check-similarity"] == "Completed" and states["evaluate-target"] == "Completed"
    assert states["validate-data"] == "Cached" and states["fine-tune-adapted"] == "Cached"
    assert (tiny_config.output.dir / "reports" / "metrics.json").is_file()
