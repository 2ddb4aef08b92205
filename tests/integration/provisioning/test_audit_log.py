"""The provisioning log is a hash chain: `provision --verify-log` says whether, and where, it was altered."""

from __future__ import annotations

import duckdb

from bitbucket_assets.provisioning.audit_log import verify_log
from tests.support.provisioning import add_request, provision


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
