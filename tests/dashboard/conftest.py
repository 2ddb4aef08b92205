"""The demo warehouse's read copy plus one provisioning request, shared by the dashboard tests."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import duckdb
import pytest

from bitbucket_assets.provisioning.tables import create_provisioning_tables


@pytest.fixture(scope="session")
def dashboard_db(demo_warehouse, tmp_path_factory) -> str:
    copy = str(tmp_path_factory.mktemp("dash") / "dash.duckdb")
    shutil.copy(demo_warehouse.read_copy, copy)
    with duckdb.connect(copy) as con:
        create_provisioning_tables(con)
        now = datetime.now(UTC)
        con.execute(
            "insert into provisioning.access_requests (request_id, workspace_slug, group_slug, user_id, "
            "action, requested_by, approved_by, approved_at, status) values ('r1', 'northwind', 'payments', "
            "'{u}', 'add', 'a@x', 'b@x', ?, 'applied')",
            [now],
        )
        con.execute(
            "insert into provisioning.provisioning_log (log_id, request_id, workspace_slug, group_slug, "
            "user_uuid, action, outcome, http_status, error, requested_by, approved_by, attempted_at, "
            "run_id, dry_run) values ('l1', 'r1', 'northwind', 'payments', '{u}', 'add', 'applied', 200, "
            "null, 'a@x', 'b@x', ?, 'run-1', false)",
            [now],
        )
    return copy
