"""The provisioning log is a hash chain: `provision --verify-log` says whether, and where, it was altered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from bitbucket_assets.provisioning.audit_log import verify_log

from .conftest import add_request, provision

EXE = Path(sys.executable).parent / "bitbucket-access"


def verify_cli(db: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DUCKDB_PATH": db}
    return subprocess.run(
        [str(EXE), "provision", "--verify-log"], capture_output=True, text=True, env=env, timeout=120
    )


def test_an_intact_trail_verifies_and_carries_the_approval_reference(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads", approval_ref="SEC-1234")
    add_request(warehouse, "r2", sim.user("lena"), "developers", action="remove")
    provision(sim, warehouse, dry_run=True)
    provision(sim, warehouse)
    with duckdb.connect(warehouse, read_only=True) as con:
        result = verify_log(con)
        rows = con.execute(
            "select seq, request_id, outcome, approval_ref from provisioning.provisioning_log order by seq"
        ).fetchall()
    assert rows == [
        (1, "r1", "planned", "SEC-1234"),
        (2, "r2", "planned", None),
        (3, "r1", "applied", "SEC-1234"),
        (4, "r2", "applied", None),
    ]
    assert result.intact and result.rows == 4
    out = verify_cli(warehouse)
    assert (
        out.returncode == 0 and out.stdout.strip() == f"provisioning log intact: 4 rows, head {result.head}"
    )


def test_an_altered_row_is_named_and_a_cut_tail_shows_against_the_recorded_head(make_sim, warehouse) -> None:
    sim = make_sim()
    for i, who in enumerate(("finn", "zoe", "carl")):
        add_request(warehouse, f"r{i}", sim.user(who), "leads")
    recorded_head = provision(sim, warehouse).head  # also in the run's Dagster metadata and the CLI output
    with duckdb.connect(warehouse) as con:
        ids = [
            r[0]
            for r in con.execute("select log_id from provisioning.provisioning_log order by seq").fetchall()
        ]
        # Someone rewrites who approved the first change, and erases the last one.
        con.execute("update provisioning.provisioning_log set approved_by = 'ceo@tiny.example' where seq = 1")
        con.execute("delete from provisioning.provisioning_log where seq = 3")
    out = verify_cli(warehouse)
    assert out.returncode == 1 and "provisioning log ALTERED: 1 problem(s)" in out.stdout
    assert f"row 1 (log_id {ids[0]}, request r0): its fields were changed after it was written" in out.stdout
    # The chain up to the cut is consistent, but its head is no longer the one recorded after the run.
    with duckdb.connect(warehouse, read_only=True) as con:
        assert verify_log(con).head != recorded_head


def test_inserted_and_reordered_rows_break_the_chain(make_sim, warehouse) -> None:
    sim = make_sim()
    for i, who in enumerate(("finn", "zoe", "carl")):
        add_request(warehouse, f"r{i}", sim.user(who), "leads")
    provision(sim, warehouse)
    with duckdb.connect(warehouse) as con:
        con.execute("delete from provisioning.provisioning_log where seq = 2")
        con.execute(
            "insert into provisioning.provisioning_log (log_id, request_id, action, outcome, attempted_at, "
            "dry_run) values ('forged', 'r9', 'add', 'applied', now(), false)"
        )
        problems = verify_log(con).problems
    assert any("log_id forged has no place in the chain" in p for p in problems)
    assert any(p.startswith("row 3 ") and "rows were deleted or inserted" in p for p in problems)
