"""The grant history's physical order, so an "as of" question reads a few row groups, not the whole history.

Analysts, the review export and the dashboard ask `marts.access_as_of(ts)` about one resource or one user.
DuckDB skips row groups (and segments) whose min/max exclude a filter, but the incremental history appends
each day's versions in the order they were computed, so every row group holds every resource and every user
and a question scans all of them (about 4 million versions on `large` after 90 days). Rewritten in Z-order of
(resource_id, principal_id), each row group covers a narrow range of both, so a question about either reads a
few of them. The rewrite runs after dbt, in the writer pool, only once the rows written since the last one
pass a tenth of the table: the daily build stays incremental, and on `large` the order is renewed about once a
week. The order only decides how much a question reads; no answer depends on it.
"""

from __future__ import annotations

import time

import duckdb

HISTORY = "marts.fct_grant_history"
# Its own schema: `raw` holds snapshots only (every row carries its sync), `marts` what dbt builds.
LOG = "maintenance.history_clustering"


def _key16(column: str) -> str:
    """A 16-bit key that rises with the string: Bitbucket's `{uuid}`s by their first hex digits (upper half),
    slugs and other ASCII names by their first two characters (lower half). Other strings only cluster less
    well."""
    uuid = f"try_cast('0x' || substr({column}, 2, 4) as integer)"
    second = f"coalesce(ascii(substr({column}, 2, 1)), 0) % 128"
    name = f"least(32767, ascii(substr({column}, 1, 1)) * 128 + {second})"
    return (
        f"(case when starts_with({column}, '{{') then 32768 + coalesce({uuid}, 65535) // 2 else {name} end)"
    )


def z_order(first: str, second: str) -> str:
    """Interleave the bits of both keys: rows near in this order are near in both columns."""
    a, b = _key16(first), _key16(second)
    return f"list_sum([((({a} >> i) & 1) << (2 * i + 1)) + ((({b} >> i) & 1) << (2 * i)) for i in range(16)])"


def cluster_history(
    con: duckdb.DuckDBPyConnection, max_unclustered: float = 0.1, min_rows: int = 100_000
) -> dict:
    """Rewrite the history in Z-order when more than `max_unclustered` of its rows were written since the last
    rewrite (and it holds at least `min_rows`). One transaction: readers see the old order or the new, the
    same rows either way. Returns what it found and did, for the asset's metadata."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'marts' and table_name = 'fct_grant_history'"
    ).fetchone()[0]
    if not exists:
        return {"clustered": False, "history_rows": 0, "rows_since_last": 0}
    con.execute("create schema if not exists maintenance")
    con.execute(
        f"create table if not exists {LOG} (clustered_at timestamptz, through_sync_at timestamptz, "
        "history_rows bigint, rows_since_last bigint, seconds double)"
    )
    total, since = con.execute(
        f"select count(*), count(*) filter (where last_sync_at > "
        f"coalesce((select max(through_sync_at) from {LOG}), '-infinity'::timestamptz)) from {HISTORY}"
    ).fetchone()
    found = {"history_rows": total, "rows_since_last": since}
    if total < min_rows or since <= max_unclustered * total:
        return {"clustered": False, **found}
    started = time.perf_counter()
    con.execute("set enable_progress_bar = false")  # the rewrite takes seconds: no bar on the run's stderr
    con.execute("begin transaction")
    try:
        con.execute(
            f"create temp table history_in_order as select * from {HISTORY} "
            f"order by {z_order('resource_id', 'principal_id')}"
        )
        con.execute(f"delete from {HISTORY}")
        con.execute(f"insert into {HISTORY} select * from history_in_order")
        con.execute("drop table history_in_order")
        seconds = time.perf_counter() - started
        con.execute(
            f"insert into {LOG} select now(), max(last_sync_at), count(*), ?, ? from {HISTORY}",
            [since, seconds],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("checkpoint")
    return {"clustered": True, **found, "seconds": round(time.perf_counter() - started, 1)}
