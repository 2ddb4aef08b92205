"""One identity per user and sync, merged over every payload that showed them (docs/design.md, "One identity
per user").

Bitbucket shows the same person in many lists, with different fields: Atlassian's own examples give members
and effective-permission entries without `account_id`, and permissions-config entries with it. Every sighting
is kept (`raw.user_sightings`, one row per distinct user, source, workspace and fields); the sync's directory
(`raw.users`) is built from them when the snapshot is finished: each field from the highest-ranked sighting
that carries it, in the fixed order of `SOURCES`, ties broken by workspace and value, never by the order of
the reads.
"""

from __future__ import annotations

import duckdb

# Where a user was seen, most authoritative first: the member list is the workspace's own record of the
# person; 1.0 group members carry account id and nickname; permission lists carry account id; Bitbucket's
# effective list carries neither in Atlassian's example; `carried` is the merged user of the sync that read a
# list carried forward (extraction/refresh.py).
SOURCES = (
    "workspace_members",
    "group_members",
    "project_permissions",
    "repository_permissions",
    "effective_permissions",
    "carried",
)
_RANKS = ", ".join(f"('{source}', {rank})" for rank, source in enumerate(SOURCES))
_ORDER = "rank, coalesce(s.workspace_slug, ''), {field}"


def _best(field: str) -> str:
    """The field's value from the best sighting that carries one."""
    return (
        f"first(s.{field} ORDER BY {_ORDER.format(field=f's.{field}')}) "
        f"FILTER (WHERE s.{field} IS NOT NULL AND s.{field} <> '') AS {field}"
    )


def build_directory(con: duckdb.DuckDBPyConnection, sync_id: str) -> int:
    """(Re)write the sync's `raw.users` from its sightings; returns the users written."""
    con.execute("DELETE FROM raw.users WHERE sync_id = ?", [sync_id])
    con.execute(
        f"""
        INSERT INTO raw.users (sync_id, user_uuid, account_id, display_name, nickname, user_type, raw)
        SELECT $1, s.user_uuid, {_best("account_id")}, {_best("display_name")}, {_best("nickname")},
               {_best("user_type")},
               first(s.raw ORDER BY {_ORDER.format(field="s.user_uuid")}) AS raw
        FROM raw.user_sightings s JOIN (VALUES {_RANKS}) AS r(source, rank) USING (source)
        WHERE s.sync_id = $1
        GROUP BY s.user_uuid
        """,
        [sync_id],
    )
    return con.execute("SELECT count(*) FROM raw.users WHERE sync_id = ?", [sync_id]).fetchone()[0]
