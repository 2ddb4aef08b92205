"""Raw snapshot retention: keep the newest N complete syncs; history lives on in the marts."""

from __future__ import annotations

import duckdb

from ..extraction.raw_schema import TABLES


def prune_raw_snapshots(con: duckdb.DuckDBPyConnection, keep: int) -> list[str]:
    """Delete the raw rows of complete syncs beyond the newest `keep`, but only those the history mart has
    already folded in (never a sync `marts.fct_grant_history` has not seen) and none that is still some
    workspace's latest observation (docs/design.md, "Coverage"). Returns the pruned sync ids."""
    has_history = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'marts' and table_name = 'fct_grant_history'"
    ).fetchone()[0]
    if not has_history or keep < 1:
        return []
    pruned = [
        r[0]
        for r in con.execute(
            """
            select sync_id from raw.syncs
            where status = 'complete'
              and finished_at <= (select max(last_sync_at) from marts.fct_grant_history)
              -- a workspace left out of later syncs still reads its latest state from this one
              and sync_id not in (select sync_id from staging.stg_bitbucket__workspace_observations
                                  where is_latest_for_workspace)
            qualify row_number() over (order by finished_at desc) > ?
            """,
            [keep],
        ).fetchall()
    ]
    for sync_id in pruned:
        for table in TABLES:
            con.execute(f"delete from raw.{table} where sync_id = ?", [sync_id])
        con.execute("update raw.syncs set status = 'pruned' where sync_id = ?", [sync_id])
    return pruned
