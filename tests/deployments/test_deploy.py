"""The deployments are built from the one flow, with a schedule and the config as parameters."""

from __future__ import annotations

import pytest

from deployments.serve import DEFAULT_CRON, build_deployments


def test_scheduled_watcher_and_on_demand_deployments():
    scheduled, watcher, on_demand = build_deployments()
    assert (scheduled.name, watcher.name, on_demand.name) == ("scheduled-retraining", "watch-data", "on-demand")
    assert scheduled.schedules[0].schedule.cron == DEFAULT_CRON
    assert watcher.schedules[0].schedule.interval.total_seconds() == 600  # every 10 minutes
    assert watcher.parameters["settle_seconds"] == 60
    assert not on_demand.schedules
    assert "config" in on_demand._parameter_openapi_schema.properties


def test_every_deployment_runs_what_the_params_file_says(tmp_path):
    from tasks.errors import ConfigError

    params = tmp_path / "params.yaml"
    params.write_text("train:\n  epochs: 1\ndata:\n  target: mine/new.csv\n")
    for deployment in build_deployments(params=params):
        assert deployment.parameters["config"]["train"]["epochs"] == 1
        assert deployment.parameters["config"]["data"]["target"] == "mine/new.csv"
    params.write_text("train:\n  epocks: 1\n")  # a typo fails the deploy, not the first scheduled run
    with pytest.raises(ConfigError, match="epocks"):
        build_deployments(params=params)
