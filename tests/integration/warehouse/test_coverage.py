"""History scoped to what a sync saw: a workspace left out of a sync keeps its last observed state."""

from __future__ import annotations

import duckdb

from bitbucket_assets.warehouse.retention import prune_raw_snapshots
from bitbucket_simulator import Simulator, SimulatorServer, load_organisation
from tests.support.warehouses import run_pipeline


def test_a_narrower_workspace_filter_invents_no_removals(warehouse) -> None:
    """Day 1 is the session's first sync of `tiny`, both workspaces (the `warehouse` copy); the simulator here
    serves the same organisation."""
    org = load_organisation("tiny")
    db = warehouse
    users = {u.nickname: u for u in org.users.values()}
    labs, co = org.workspaces["tiny-labs"], org.workspaces["tiny-co"]

    def query(sql: str, params=None) -> list[tuple]:
        with duckdb.connect(db, read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def check_passed(result) -> bool:
        return next(
            c.passed
            for c in result.get_asset_check_evaluations()
            if c.check_name == "effective_access_matches_bitbucket"
        )

    with SimulatorServer(Simulator(org)) as server:
        email = org.users[org.operator_uuid].email
        labs_before = query(
            "select resource_key, user_uuid, permission from marts.fct_effective_access "
            "where workspace_slug = 'tiny-labs' order by all"
        )
        day1 = query("select synced_at from marts.dim_workspaces where workspace_slug = 'tiny-labs'")[0][0]

        co.repositories["runbooks"].user_grants[users["zoe"].uuid] = "admin"
        org.touch()
        day2 = run_pipeline(server.url, email, db, workspaces="tiny-co")  # day 2: tiny-co only
        assert day2.success and check_passed(day2)
        # Nothing was removed in tiny-labs, and its access is still there, as of its last observation.
        assert query("select count(*) from marts.fct_access_changes where workspace_slug = 'tiny-labs'") == [
            (0,)
        ]
        assert (
            query(
                "select resource_key, user_uuid, permission from marts.fct_effective_access "
                "where workspace_slug = 'tiny-labs' order by all"
            )
            == labs_before
        )
        assert query(
            "select distinct synced_at from marts.fct_grants where workspace_slug = 'tiny-labs'"
        ) == [(day1,)]
        assert query(
            "select workspace_slug, covered_by_latest_sync from marts.dim_workspaces order by 1"
        ) == [
            ("tiny-co", True),
            ("tiny-labs", False),
        ]
        assert query(
            "select count(*) from marts.fct_grant_history where workspace_slug = 'tiny-labs' "
            "and valid_to is not null"
        ) == [(0,)]
        # tiny-co's change is seen.
        assert query(
            "select change, principal_name, new_permission from marts.fct_access_changes "
            "where resource_key = 'runbooks' and grant_source = 'direct'"
        ) == [("changed", users["zoe"].display_name, "admin")]

        # Retention keeps the older sync: it still holds tiny-labs' latest observation.
        first_sync = query("select sync_id from marts.dim_workspaces where workspace_slug = 'tiny-labs'")[0][
            0
        ]
        with duckdb.connect(db) as con:
            assert first_sync not in prune_raw_snapshots(con, keep=1)
        kept = "select count(*) from raw.repositories where sync_id = ? and workspace_slug = 'tiny-labs'"
        assert query(kept, [first_sync]) == [(1,)]

        labs.repositories["experiments"].user_grants[users["ana"].uuid] = "read"
        org.touch()
        day3 = run_pipeline(server.url, email, db)  # day 3: both again; tiny-labs changed meanwhile
        assert day3.success and check_passed(day3)
    assert query(
        "select change, resource_key, principal_name, grant_source, new_permission from "
        "marts.fct_access_changes where workspace_slug = 'tiny-labs'"
    ) == [("added", "experiments", users["ana"].display_name, "direct", "read")]
    assert query("select bool_and(covered_by_latest_sync) from marts.dim_workspaces") == [(True,)]
