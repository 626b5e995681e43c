"""The deployments are built from the one flow, with a schedule and the config as parameters."""

from __future__ import annotations

from deployments.serve import DEFAULT_CRON, build_deployments


def test_scheduled_and_on_demand_deployments():
    scheduled, on_demand = build_deployments()
    assert scheduled.name == "scheduled-retraining" and on_demand.name == "on-demand"
    assert scheduled.schedules[0].schedule.cron == DEFAULT_CRON
    assert not on_demand.schedules
    assert "config" in on_demand._parameter_openapi_schema.properties
