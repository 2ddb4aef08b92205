"""`bitbucket-access demo --dagster`: the simulator and `dagster dev` on it, so "Materialize all" in the UI
works against the simulator in minutes (the production template `.env.example` stays production's). A sync
launched through the UI's GraphQL API succeeds, and stopping the command stops dagster dev with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from bitbucket_assets.warehouse.files import open_reader
from tests.support import free_port, wait_for

LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


@pytest.mark.timeout(900)
def test_demo_dagster_serves_the_ui_on_the_simulator(tmp_path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITBUCKET_") and k != "DUCKDB_PATH"}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    cli = Path(sys.executable).parent / "bitbucket-access"
    with (tmp_path / "demo.log").open("w") as log:
        proc = subprocess.Popen(
            [str(cli), "demo", "--dagster", "--org", "tiny", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            graphql = f"http://127.0.0.1:{port}/graphql"
            wait_for(
                "the Dagster UI",
                lambda: requests.get(f"http://127.0.0.1:{port}/server_info", timeout=10).ok,
                300,
                tolerate=(requests.RequestException,),
            )
            params = {
                "selector": {
                    "repositoryLocationName": "bitbucket_assets.definitions",
                    "repositoryName": "__repository__",
                    "jobName": "bitbucket_sync",
                }
            }

            def launched():
                body = requests.post(
                    graphql, json={"query": LAUNCH, "variables": {"params": params}}, timeout=60
                )
                answer = body.json()["data"]["launchRun"]
                return answer["run"]["runId"] if answer["__typename"] == "LaunchRunSuccess" else None

            run_id = wait_for(
                "the code location to load and the run to launch",
                launched,
                300,
                tolerate=(requests.RequestException,),
            )

            def finished():
                body = requests.post(graphql, json={"query": STATUS, "variables": {"id": run_id}}, timeout=60)
                status = body.json()["data"]["runOrError"]["status"]
                return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

            assert (
                wait_for("the sync run to finish", finished, 480, tolerate=(requests.RequestException,))
                == "SUCCESS"
            ), (tmp_path / "demo.log").read_text()[-3000:]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=240)  # the demo gives dagster dev 30 s per signal
    # The warehouse the UI's run wrote, from the simulated organisation (tiny: 6 repositories).
    with open_reader(str(tmp_path / "data" / "demo.duckdb")) as con:
        assert con.execute("select count(*) from marts.dim_repositories").fetchone()[0] == 6

    def port_closed() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) != 0

    # dagster dev stops with the command; its webserver may take a moment on a busy machine.
    assert wait_for("dagster dev's webserver to stop", port_closed, 300)
    assert "Simulated Bitbucket Cloud (tiny" in (tmp_path / "demo.log").read_text()
