"""A throwaway PostgreSQL server, and a Dagster home whose instance is deploy/dagster.yaml pointed at it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from bitbucket_simulator import SIM_API_TOKEN
from tests.support import ROOT

from .postgres import PostgresServer, binaries, start_postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if binaries() is None:
        pytest.skip(
            "PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql; .ci/run does)"
        )
    # Not under pytest's temporary root: its directories are private to root, and the server may run as
    # `postgres` (postgres.py).
    directory = Path(tempfile.mkdtemp(prefix="bitbucket-access-pg-"))
    server = start_postgres(directory)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def production_instance_yaml() -> dict:
    """deploy/dagster.yaml as production runs it, with the Kubernetes run launcher swapped for the default one
    (no cluster here): the same Postgres storage, run coordinator, pools and run limits."""
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    config.pop("run_launcher")
    return config


@pytest.fixture
def dagster_home(tmp_path, postgres, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(production_instance_yaml()))
    for name, value in {
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_USER": postgres.user,
        "DAGSTER_PG_PASSWORD": postgres.password,
        "DAGSTER_PG_DB": postgres.database,
        "DAGSTER_HOME": str(home),
    }.items():
        monkeypatch.setenv(name, value)
    return home


BIN = Path(sys.executable).parent


def pipeline_env(sim, db: Path, **overrides: str) -> dict[str, str]:
    """The environment of the code location (workspace.yaml) against the simulator, as an operator sets it."""
    return {
        **os.environ,
        "BITBUCKET_API_URL": sim.url,
        "BITBUCKET_EMAIL": sim.email,
        "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
        "BITBUCKET_REQUESTS_PER_HOUR": "10000000",
        "DUCKDB_PATH": str(db),
        **overrides,
    }


def dagster_cli(env: dict[str, str], *command: str) -> str:
    done = subprocess.run(
        [str(BIN / "dagster"), *command, "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


@contextmanager
def running_daemon(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the workspace, stopped (and its output kept in `log`) at the end."""
    with log.open("w") as out:
        # Its own process group: the code server and run workers it starts are stopped with it, not left
        # behind.
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield daemon
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(timeout=60)
            with contextlib.suppress(ProcessLookupError):  # whatever of the group outlived the daemon
                os.killpg(daemon.pid, signal.SIGKILL)
