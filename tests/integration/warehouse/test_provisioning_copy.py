"""The provisioning copy: what provisioning writes after a sync reaches readers of the read copy at once,
through the tables, the views and the mart macros that read them, and its signed log still verifies."""

from __future__ import annotations

import os
import stat
from datetime import date

import duckdb

from bitbucket_assets.provisioning.audit_log import verify_log
from bitbucket_assets.warehouse.files import publish_read_copy
from bitbucket_assets.warehouse.provisioning_copy import (
    attach_provisioning_copy,
    data_times,
    publish_provisioning_copy,
)
from tests.support.keys import service_keys
from tests.support.provisioning import add_request, provision

LEAVER_RISK = (
    "select count(*) from marts.access_risks_as_of(current_timestamp) "
    "where risk = 'access still held by a leaver' and user_uuid = ?"
)


def read(read_copy: str, sql: str, params=None):
    with duckdb.connect(read_copy, read_only=True) as con:
        attach_provisioning_copy(con, read_copy)
        return con.execute(sql, params or []).fetchall()


def test_what_provisioning_writes_after_the_sync_wins_over_the_read_copy(make_sim, warehouse, tmp_path):
    sim = make_sim()
    signer, verifier = service_keys(tmp_path)
    read_copy = str(publish_read_copy(warehouse))  # the sync's publication: no provisioning yet
    finn = sim.user("finn").uuid
    add_request(warehouse, "r0", sim.user("finn"), "leads")
    provision(sim, warehouse, signing=signer)
    with duckdb.connect(warehouse) as con:
        con.execute("insert into provisioning.leavers values (?, ?, 'hr')", [finn, date(2026, 1, 1)])
    assert read(read_copy, "select count(*) from provisioning.actions") == [(0,)]
    assert read(read_copy, LEAVER_RISK, [finn]) == [(0,)]

    os.chmod(warehouse, 0o640)
    side = publish_provisioning_copy(warehouse)
    assert stat.S_IMODE(os.stat(side).st_mode) == 0o640  # readable by whom the warehouse is, no more

    # The view, the table and the risk macro built into the read copy all read the copy's rows.
    assert read(read_copy, "select request_id, outcome from provisioning.actions") == [("r0", "applied")]
    assert read(read_copy, LEAVER_RISK, [finn]) == [(1,)]
    with duckdb.connect(read_copy, read_only=True) as con:
        assert con.execute("select count(*) from provisioning.provisioning_log").fetchone() == (0,)
        attach_provisioning_copy(con, read_copy)
        times = data_times(con)
        synced = con.execute("select max(finished_at) from raw.syncs where status = 'complete'").fetchone()[0]
        newest = con.execute("select max(attempted_at) from provisioning.provisioning_log").fetchone()[0]
    assert times.snapshot_at == synced and times.provisioning_at == newest
    assert times.published_at is not None and times.published_at >= newest
    # Row for row: the chain and its signed heads verify over the copy as over the warehouse.
    with duckdb.connect(str(side), read_only=True) as con:
        result = verify_log(con, verifier)
    assert result.intact and result.rows == 1, result.problems
    with duckdb.connect(warehouse, read_only=True) as con:
        assert verify_log(con, verifier).head == result.head
