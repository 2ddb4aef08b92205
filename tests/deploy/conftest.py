"""A throwaway PostgreSQL server, and a Dagster home whose instance is deploy/dagster.yaml pointed at it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .postgres import PostgresServer, binaries, start_postgres

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if binaries() is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql; .ci/run does)")
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
    for name, value in {"DAGSTER_PG_HOST": postgres.host, "DAGSTER_PG_PORT": str(postgres.port),
                        "DAGSTER_PG_USER": postgres.user, "DAGSTER_PG_PASSWORD": postgres.password,
                        "DAGSTER_PG_DB": postgres.database, "DAGSTER_HOME": str(home)}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    return home
