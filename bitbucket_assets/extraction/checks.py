"""Checks on one raw snapshot: SQL over the raw tables for a given `sync_id`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .vanished import Vanished, vanished_entries


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    description: str
    metadata: dict
    severity: str = "ERROR"  # or WARN: worth a look, but the snapshot is still sound


def permissions_fetched(con, sync_id: str) -> CheckOutcome:
    """Every repository and project has both its users and groups permission lists in the snapshot: read by
    this sync or carried forward from the one that last read them."""
    missing = con.execute(
        """
        WITH expected AS (
            SELECT 'repository' AS resource_type, repository_uuid AS id,
                   workspace_slug || '/' || repository_slug AS name
            FROM raw.repositories WHERE sync_id = $1
            UNION ALL
            SELECT 'project', project_uuid, workspace_slug || '/' || project_key FROM raw.projects WHERE
            sync_id = $1
        ), lists AS (SELECT * FROM expected CROSS JOIN (VALUES ('users'), ('groups')) AS l(list))
        SELECT resource_type, name, list FROM lists
        WHERE NOT EXISTS (
            SELECT 1 FROM raw.fetch_log f
            WHERE f.sync_id = $1 AND f.resource_type = lists.resource_type AND f.resource_id = lists.id
              AND f.list = lists.list)
        ORDER BY ALL LIMIT 50
        """,
        [sync_id],
    ).fetchall()
    return CheckOutcome(
        "permissions_fetched",
        not missing,
        "Every project's and repository's users and groups permission lists are in the snapshot (read or "
        "carried).",
        {"missing": [f"{t} {n} {lst}" for t, n, lst in missing]},
    )


def permission_lists_fresh(con, sync_id: str) -> CheckOutcome:
    """No permission list in the snapshot is older than the sync's refresh age
    (BITBUCKET_REFRESH_MAX_AGE_DAYS): lists carried forward from earlier syncs are re-read before they get
    that old (extraction/refresh.py)."""
    n, stale = con.execute(
        """
        WITH s AS (
            SELECT started_at, coalesce(try_cast(options ->> 'max_age_days' AS INTEGER), 7) AS n
            FROM raw.syncs WHERE sync_id = $1
        )
        SELECT any_value(s.n),
               list(f.workspace_slug || ' ' || f.resource_type || ' ' || f.resource_id || ' ' || f.list
                    || ' read ' || strftime(timezone('UTC', f.fetched_at), '%Y-%m-%d %H:%M UTC'))
        FROM s LEFT JOIN raw.fetch_log f
            ON f.sync_id = $1 AND f.fetched_at <= s.started_at - to_days(s.n)
        """,
        [sync_id],
    ).fetchone()
    stale = sorted(entry for entry in stale or [] if entry is not None)
    return CheckOutcome(
        "permission_lists_fresh",
        not stale,
        f"Every permission list in the snapshot was read within {n} days of the sync (older ones are "
        "re-read).",
        {"max_age_days": n, "stale": stale[:50], "stale_count": len(stale)},
    )


def memberships_point_at_known_users(con, sync_id: str) -> CheckOutcome:
    """Every user a membership, a grant or an effective permission names has a row in the sync's user
    directory (written from every payload that shows a user, so a gap is a bug in the extraction, not in
    Bitbucket)."""
    orphans = con.execute(
        """
        SELECT source, workspace_slug, user_uuid FROM (
            SELECT 'group_members' AS source, workspace_slug, user_uuid FROM raw.group_members WHERE sync_id =
            $1
            UNION ALL
            SELECT 'project_user_permissions', workspace_slug, user_uuid
            FROM raw.project_user_permissions WHERE sync_id = $1
            UNION ALL
            SELECT 'repository_user_permissions', workspace_slug, user_uuid
            FROM raw.repository_user_permissions WHERE sync_id = $1
            UNION ALL
            SELECT 'workspace_members', workspace_slug, user_uuid FROM raw.workspace_members WHERE sync_id =
            $1
            UNION ALL
            SELECT 'effective_repository_permissions', workspace_slug, user_uuid
            FROM raw.effective_repository_permissions WHERE sync_id = $1
        ) m
        WHERE NOT EXISTS (SELECT 1 FROM raw.users u WHERE u.sync_id = $1 AND u.user_uuid = m.user_uuid)
        ORDER BY ALL LIMIT 50
        """,
        [sync_id],
    ).fetchall()
    return CheckOutcome(
        "memberships_point_at_known_users",
        not orphans,
        "Every member, group member, user grant and effective permission refers to a user in the directory.",
        {"orphans": [f"{s} {w} {u}" for s, w, u in orphans]},
    )


def no_unexpected_empty_entity(con, sync_id: str) -> CheckOutcome:
    """A snapshot with no users, no workspace members or no repositories is almost surely a broken sync."""
    counts = {
        table: con.execute(f"SELECT count(*) FROM raw.{table} WHERE sync_id = ?", [sync_id]).fetchone()[0]
        for table in ("workspaces", "users", "workspace_members", "repositories")
    }
    empty = [t for t, n in counts.items() if n == 0]
    return CheckOutcome(
        "no_unexpected_empty_entity",
        not empty,
        "Workspaces, users, workspace members and repositories are all non-empty.",
        {"counts": counts, "empty": empty},
    )


def no_entries_skipped(con, sync_id: str) -> CheckOutcome:
    """List entries skipped for lacking their identity (a `user: null`, a group without a slug): a warning
    that names endpoint and page, since the rest of the snapshot is exact without them."""
    rows = con.execute(
        "SELECT workspace_slug, endpoint, page, reason FROM raw.anomalies WHERE sync_id = ? ORDER BY ALL",
        [sync_id],
    ).fetchall()
    return CheckOutcome(
        "no_entries_skipped",
        not rows,
        "No list entry had to be skipped for lacking the identity the model needs.",
        {
            "skipped": len(rows),
            "examples": [
                f"{ws} {endpoint} page {page}: {reason}" for ws, endpoint, page, reason in rows[:50]
            ],
        },
        severity="WARN",
    )


def nothing_vanished(con, sync_id: str) -> CheckOutcome:
    """No workspace lost more of its repositories, projects, members or groups since its last observation
    than the circuit breaker allows (extraction/vanished.py). Failing, the snapshot is held back (`suspect`)
    and the run stops before dbt: the marts keep the last state until `sync --accept-vanished` publishes
    it."""
    status, vanished, accepted = con.execute(
        "SELECT status, vanished, vanished_accepted FROM raw.syncs WHERE sync_id = ?", [sync_id]
    ).fetchone()
    record = json.loads(vanished or "{}")
    entries, limit = vanished_entries(vanished), record.get("limit", "")
    over = [v for v in entries if v["over_limit"]]
    lines = [Vanished(**v).line() for v in over or entries][:50]
    if status == "suspect":
        description = (
            "Too much vanished since the last observation: the snapshot is held back (status `suspect`) and "
            "nothing is published. If the change is real, run `bitbucket-access sync --accept-vanished` (run "
            "config `accept_vanished: true`) to publish it."
        )
    elif over and accepted:
        description = "More vanished than the circuit breaker allows, and the change was accepted."
    else:
        description = "No workspace lost more than the circuit breaker allows since its last observation."
    return CheckOutcome(
        "nothing_vanished",
        status != "suspect",
        description,
        {"status": status, "vanished": lines, "accepted": bool(accepted), "limit": limit},
    )


ALL_CHECKS = (
    permissions_fetched,
    permission_lists_fresh,
    memberships_point_at_known_users,
    no_unexpected_empty_entity,
    no_entries_skipped,
    nothing_vanished,
)
# Checks whose failure stops the run before anything downstream reads the snapshot (blocking, in Dagster).
BLOCKING = frozenset({"nothing_vanished"})
