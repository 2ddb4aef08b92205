"""The history rewritten in Z-order for the as-of questions: the same rows, in order, only when due."""

from __future__ import annotations

import shutil

import duckdb

from bitbucket_assets.warehouse.clustering import LOG, cluster_history, z_order
from tests.support.warehouses import History

AS_OF = "select * from marts.effective_access_as_of(?) order by all"


def _history(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("select * from marts.fct_grant_history order by grant_version_id").fetchall()


def test_the_pipeline_reports_the_history_it_would_cluster(tiny_history: History) -> None:
    metadata = tiny_history.runs[-1].materializations["history_order"]
    rows = tiny_history.query("select count(*) from marts.fct_grant_history")[0][0]
    # tiny's history is far below the size worth a rewrite: counted, left alone.
    assert metadata["history_rows"] == rows > 0
    assert metadata["history_clustered"] is False


def test_clustering_rewrites_the_same_rows_in_z_order(tiny_history: History, tmp_path) -> None:
    db = str(tmp_path / "copy.duckdb")
    shutil.copy(tiny_history.db, db)
    day2 = tiny_history.query(
        "select finished_at from raw.syncs where sync_id = ?", [tiny_history.sync_ids[1]]
    )[0][0]
    with duckdb.connect(db) as con:
        before, as_of_before = _history(con), con.execute(AS_OF, [day2]).fetchall()
        assert cluster_history(con, min_rows=10**9)["clustered"] is False  # too small to bother
        done = cluster_history(con, max_unclustered=0.0, min_rows=0)
        assert done["clustered"] is True and done["rows_since_last"] == done["history_rows"] == len(before)
        assert _history(con) == before
        assert con.execute(AS_OF, [day2]).fetchall() == as_of_before and as_of_before
        # Stored in Z-order: the key never decreases along the table.
        out_of_order = con.execute(
            "select count(*) filter (where k < previous) from (select k, lag(k) over (order by r) as "
            f"previous from (select {z_order('resource_id', 'principal_id')} as k, rowid as r from "
            "marts.fct_grant_history))"
        ).fetchone()[0]
        assert out_of_order == 0
        logged = con.execute(f"select history_rows, rows_since_last from {LOG}").fetchall()
        assert logged == [(len(before), len(before))]
        # Nothing written since: not again.
        again = cluster_history(con, max_unclustered=0.0, min_rows=0)
        assert again == {"clustered": False, "history_rows": len(before), "rows_since_last": 0}


def test_the_key_follows_string_order() -> None:
    """Z-order only helps if each key rises with its column: uuids above slugs, each in string order."""
    values = sorted(
        [
            "{00a1b2c3-0000}",
            "{7fff0000-1}",
            "{ffff9999-2}",
            "{a0000000-3}",
            "admins",
            "b",
            "developers",
            "leads",
            "zz-team",
            "A-Team",
            "1password",
        ]
    )
    keys = duckdb.execute(
        f"select list({z_order('v', 'v')} order by v) from unnest(?::varchar[]) as t(v)", [values]
    ).fetchone()[0]
    assert keys == sorted(keys) and len(set(keys)) == len(values)
