"""Faults never leave lies behind: a diverging run ends FAILED with nothing registered, and no secret from the
environment reaches MLflow's params or tags."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.reliability

NAME = "adaptflow-classifier"


def test_a_nan_loss_fails_the_flow_at_once_ends_the_run_failed_and_registers_nothing(prefect_harness, tiny_config,
                                                                                    mlflow_store):
    from mlflow import MlflowClient

    from flows.adaptation import adaptation_flow
    from tasks.errors import TrainingError

    tiny_config.tracking.uri = mlflow_store
    tiny_config.train.learning_rate = 1e6
    tiny_config.train.max_grad_norm = 1e12
    state = adaptation_flow(tiny_config, return_state=True)
    with pytest.raises(TrainingError, match="loss"):
        state.result()
    client = MlflowClient(mlflow_store, registry_uri=mlflow_store)
    (run,) = client.search_runs([client.get_experiment_by_name("adaptflow").experiment_id])
    assert run.info.status == "FAILED"
    assert client.search_model_versions(f"name = '{NAME}'") == []
    assert not (tiny_config.output.dir / "reports").exists()


def test_no_secret_from_the_environment_reaches_mlflow_params_or_tags(prefect_harness, tiny_config, mlflow_store,
                                                                     monkeypatch):
    import os
    import re

    from mlflow import MlflowClient

    from flows.adaptation import adaptation_flow

    monkeypatch.setenv("ADAPTFLOW_TEST_API_TOKEN", "tok-3f9c2a71d4")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-9d8e7f6a5b")
    tiny_config.tracking.uri = mlflow_store
    tiny_config.evaluation.baseline = False
    summary = adaptation_flow(tiny_config)
    run = MlflowClient(mlflow_store).get_run(summary["mlflow_run_id"])
    logged = " ".join([*run.data.params.values(), *run.data.tags.values()])
    secrets = [value for name, value in os.environ.items()
               if re.search(r"(?i)secret|token|passw|api_?key|credential", name) and len(value) >= 8]
    assert "tok-3f9c2a71d4" in secrets and "aws-9d8e7f6a5b" in secrets
    assert [value for value in secrets if value in logged] == []
