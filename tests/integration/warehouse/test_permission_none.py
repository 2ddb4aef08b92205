"""`none`, in every permission enum of the spec, is stored raw and never counted as access."""

from __future__ import annotations

import duckdb

from bitbucket_simulator import Simulator, SimulatorServer, load_organisation
from tests.support.warehouses import run_pipeline


def test_a_none_grant_is_stored_but_is_never_access(warehouse_dir) -> None:
    org = load_organisation("tiny")
    ws = org.workspaces["tiny-co"]
    lone = next(u for u in org.users.values() if u.nickname == "filler-050")
    ws.repositories["ledger"].user_grants[lone.uuid] = "none"
    ws.repositories["runbooks"].group_grants["leads"] = "none"
    ws.projects["PAY"].user_grants[lone.uuid] = "none"
    db = str(warehouse_dir / "w.duckdb")
    with SimulatorServer(Simulator(org)) as server:
        result = run_pipeline(server.url, org.users[org.operator_uuid].email, db)
    assert result.success
    assert next(
        c.passed
        for c in result.get_asset_check_evaluations()
        if c.check_name == "effective_access_matches_bitbucket"
    )
    with duckdb.connect(db, read_only=True) as con:
        raw = con.execute(
            "select 'repository user', count(*) from raw.repository_user_permissions where permission = "
            "'none' union all select 'repository group', count(*) from raw.repository_group_permissions "
            "where permission = 'none' union all select 'project user', count(*) from "
            "raw.project_user_permissions where permission = 'none' order by 1"
        ).fetchall()
        paths = con.execute("select count(*) from marts.fct_grants where permission = 'none'").fetchone()[0]
        effective = con.execute(
            "select count(*) from marts.fct_effective_access where permission = 'none'"
        ).fetchone()
        lone_paths = con.execute(
            "select resource_key, grant_source, permission from marts.fct_grants "
            "where principal_id = ? and resource_key in ('ledger', 'PAY') order by all",
            [lone.uuid],
        ).fetchall()
    assert raw == [("project user", 1), ("repository group", 1), ("repository user", 1)]
    assert paths == 0 and effective == (0,)
    assert all(p != "none" for _, _, p in lone_paths) and ("ledger", "direct", "none") not in lone_paths
