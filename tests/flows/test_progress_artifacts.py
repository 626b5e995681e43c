"""A fine-tune's progress is a Prefect progress artifact inside a task run, and costs nothing outside one."""

import subprocess
import sys


def test_outside_a_task_run_there_is_none_and_prefect_is_not_imported():
    code = ("import sys; from flows.progress_artifacts import progress_artifact; "
            "print(progress_artifact('fine-tune-adapted', 'share trained'), 'prefect' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["None", "False"]


def test_inside_a_task_run_the_share_trained_is_a_progress_artifact(prefect_harness):
    from prefect import flow, task
    from prefect.artifacts import Artifact

    from flows.progress_artifacts import progress_artifact

    @task
    def train_half() -> None:
        update = progress_artifact("fine-tune-test", "share trained")
        update(0.5)

    @flow
    def training() -> None:
        train_half()

    training()
    artifact = Artifact.get("fine-tune-test")
    assert artifact is not None and artifact.type == "progress" and float(artifact.data) == 50.0


def test_updates_closer_than_the_interval_are_dropped_except_the_end(prefect_harness):
    from prefect import flow, task
    from prefect.artifacts import Artifact

    from flows.progress_artifacts import progress_artifact

    seen: list[float] = []

    @task
    def train() -> None:
        update = progress_artifact("fine-tune-interval", "share trained")
        update(0.3)  # the first is sent
        update(0.6)  # at once after it: dropped, the training does not wait on the API for it
        seen.append(float(Artifact.get("fine-tune-interval").data))
        update(1.0)  # the end is always sent

    @flow
    def training() -> None:
        train()

    training()
    assert seen == [30.0] and float(Artifact.get("fine-tune-interval").data) == 100.0
