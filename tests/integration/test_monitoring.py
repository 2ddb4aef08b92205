"""Monitoring: a failed run is posted to the alert webhook (whose URL, a secret, appears nowhere), and the raw
snapshot's manifest carries the freshness policy that marks a sync overdue."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from bitbucket_assets.alerts import AlertDeliveryError, post_alert
from bitbucket_assets.definitions import build_definitions
from bitbucket_assets.settings import load_settings

SECRET_PATH = "/services/T000/B000/webhook-secret-part"


class Receiver:
    """A loopback webhook that records what is posted and answers with `status`."""

    def __init__(self, status: int = 200):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET_PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    made = []

    def start(status: int = 200) -> Receiver:
        made.append(Receiver(status))
        return made[-1]

    yield start
    for r in made:
        r.server.shutdown()


def test_a_failed_sync_is_posted_to_the_webhook(make_sim, tmp_path, receiver) -> None:
    sim, hook = make_sim(), receiver()
    settings = load_settings(
        bitbucket_api_url=sim.url,
        bitbucket_email=sim.email,
        bitbucket_api_token="ATATT3xWrongTokenForTheAlertTest",
        bitbucket_alert_webhook=hook.url,
        duckdb_path=str(tmp_path / "w.duckdb"),
    )
    defs = build_definitions(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("bitbucket_sync").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="alert_on_failed_run",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
        ).for_run_failure()
        defs.get_sensor_def("alert_on_failed_run")(context)
    ((path, body),) = hook.received
    assert path == SECRET_PATH
    assert f"run {result.run_id} of job bitbucket_sync failed" in body["text"]
    assert "ATATT3xWrong" not in body["text"] and "webhook-secret" not in body["text"]


def test_a_webhook_that_refuses_is_an_error_that_hides_the_url(receiver) -> None:
    hook = receiver(status=500)
    with pytest.raises(AlertDeliveryError) as error:
        post_alert(hook.url, "test")
    assert "HTTP 500" in str(error.value) and "webhook-secret" not in str(error.value)
    with pytest.raises(AlertDeliveryError) as error:
        post_alert("http://127.0.0.1:9" + SECRET_PATH, "test", timeout=5)
    assert "webhook-secret" not in str(error.value) and error.value.__cause__ is None


def test_the_sync_manifest_goes_stale_after_the_configured_hours(tmp_path) -> None:
    defs = build_definitions(
        load_settings(duckdb_path=str(tmp_path / "w.duckdb"), bitbucket_sync_stale_hours=30)
    )
    graph = defs.resolve_asset_graph()
    policy = graph.get(dg.AssetKey(["raw", "syncs"])).freshness_policy
    assert policy is not None and policy.fail_window.to_timedelta() == timedelta(hours=30)
    assert graph.get(dg.AssetKey(["marts", "fct_grants"])).freshness_policy is None
