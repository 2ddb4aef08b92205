"""A warehouse holding one synced snapshot of `tiny` (built once), copied for each test, plus helpers."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.client.admin_api import AtlassianAdminApi
from bitbucket_assets.provisioning.engine import Provisioner, ProvisioningPolicy
from bitbucket_assets.provisioning.tables import create_provisioning_tables
from bitbucket_simulator import (
    SIM_API_TOKEN,
    SIM_ORG_API_KEY,
    SIM_ORG_ID,
    Simulator,
    SimulatorServer,
    load_organisation,
)

from ..warehouse.conftest import run_pipeline

NOW = datetime.now(UTC)


@pytest.fixture(scope="session")
def tiny_warehouse(tmp_path_factory) -> str:
    org = load_organisation("tiny")
    db = str(tmp_path_factory.mktemp("provisioning") / "tiny.duckdb")
    with SimulatorServer(Simulator(org)) as server:
        assert run_pipeline(server.url, org.users[org.operator_uuid].email, db).success
    return db


@pytest.fixture
def warehouse(tiny_warehouse, tmp_path) -> str:
    copy = str(tmp_path / "w.duckdb")
    shutil.copy(tiny_warehouse, copy)
    with duckdb.connect(copy) as con:
        create_provisioning_tables(con)
    return copy


def add_request(db: str, request_id: str, user, group: str, action: str = "add", **overrides) -> None:
    row = {
        "request_id": request_id,
        "workspace_slug": "tiny-co",
        "group_slug": group,
        "user_id": user if isinstance(user, str) else user.uuid,
        "action": action,
        "requested_by": "ana@tiny.example",
        "approved_by": "olga@tiny.example",
        "approved_at": NOW - timedelta(hours=1),
        "expires_at": None,
        "reason": "needed for the payments migration",
        "allow_protected": False,
        **overrides,
    }
    with duckdb.connect(db) as con:
        con.execute(
            f"insert into provisioning.access_requests ({', '.join(row)}) values "
            f"({', '.join('?' * len(row))})",
            list(row.values()),
        )


FAST = {"requests_per_hour": 1e7, "backoff_base": 0.01, "backoff_max": 0.02, "rate_limit_backoff": 0.01}


def admin_api(sim, key: str = SIM_ORG_API_KEY, **client_kw) -> AtlassianAdminApi:
    """The simulated organization's Atlassian Admin API, with `key`."""
    return AtlassianAdminApi.connect(SIM_ORG_ID, key, sim.url, **{**FAST, **client_kw})


def provision(
    sim,
    db: str,
    dry_run: bool = False,
    now=None,
    policy=None,
    approvals=None,
    admin=None,
    admin_managed=None,
    **client_kw,
) -> Provisioner:
    """One provisioning run; `admin`: the Admin API for workspaces administered from admin.atlassian.com."""
    token = client_kw.pop("token", SIM_API_TOKEN)
    client = BitbucketClient(Credentials.api_token(sim.email, token), sim.url, **{**FAST, **client_kw})
    with duckdb.connect(db) as con:
        p = Provisioner(
            None if dry_run else client,
            con,
            policy or ProvisioningPolicy(),
            now=now,
            approvals=approvals,
            admin_api=admin,
            admin_managed=admin_managed,
        )
        p.provision(dry_run=dry_run)
    return p


def expire(sim, db: str, now, admin=None, admin_managed=None) -> Provisioner:
    client = BitbucketClient(Credentials.api_token(sim.email, SIM_API_TOKEN), sim.url, requests_per_hour=1e7)
    with duckdb.connect(db) as con:
        p = Provisioner(
            client, con, ProvisioningPolicy(), now=now, admin_api=admin, admin_managed=admin_managed
        )
        p.expire()
    return p


def statuses(db: str) -> dict[str, tuple[str, str | None]]:
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute(
            "select request_id, status, status_reason from provisioning.access_requests"
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def log_with_backend(db: str) -> dict[str, tuple]:
    """request id -> (action, outcome, backend, error) of its last log row."""
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute(
            "select request_id, action, outcome, backend, error from provisioning.provisioning_log order by "
            "seq"
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def log(db: str) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(
            "select request_id, action, outcome, http_status, error, dry_run from "
            "provisioning.provisioning_log order by attempted_at"
        ).fetchall()


def writes(sim) -> list:
    return [r for r in sim.simulator.request_log if r.method in ("PUT", "DELETE")]
