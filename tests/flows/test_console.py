"""The command line's Prefect settings for a flow run in this process."""

from __future__ import annotations


def test_a_local_run_has_no_flow_run_heartbeats_on_the_ephemeral_api_and_keeps_them_with_a_server():
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    from flows.console import local_run

    def heartbeat() -> int | None:  # what Prefect's flow engine reads when a flow run starts in this thread
        return get_current_settings().flows.heartbeat_frequency

    with temporary_settings(updates={PREFECT_API_URL: None}):  # the ephemeral API: nothing watches heartbeats
        default = heartbeat()
        with local_run():
            assert heartbeat() is None
        assert heartbeat() == default == 180  # only the run inside it
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):  # a server: they stay on
        with local_run():
            assert heartbeat() == 180
