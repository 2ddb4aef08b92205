"""Which repositories' permission lists a sync reads again, and carrying the others forward.

A daily snapshot of a large organisation cannot read every repository's lists every day inside Bitbucket's
rate limit (docs/production.md, "Cost model"). An incremental sync reads a repository's lists when:
- it is new (no list of it is known);
- it is due: read at least every `max_age_days` days, spread evenly over the days (a rolling slot per
  repository), so a change that does not alter anyone's access (a redundant direct grant) is seen within N
  days;
- its effective access differs: Bitbucket's effective list (read the same day) disagrees with what today's
  members, groups, project grants, owners and the repository's last known lists give.

The rules are SQL in dbt (`plan.repository_list_freshness`, `plan.repository_refresh_plan`, views over the raw
tables of the sync in progress); this module only asks them. What it decides itself is scheduling: whether a
workspace reads its effective list today (`lists_instead_of_effective`). A repository not read is carried
forward: its rows of the sync that last read them are copied into this sync with `observed_sync_id`, so every
snapshot is self-contained (history and retention see whole snapshots) and says how old each list is.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb

from ..settings import DEFAULT_CHANGE_CONTROL_DAYS, DEFAULT_REFRESH_MAX_AGE_DAYS, DEFAULT_SYNC_TARGET_HOURS

# The day is estimated from the last sync's sizes, and an organisation grows: the target rule keeps this much
# of the target in hand, about a week of `large`'s growth (0.7 % a day), so the day it crosses the target is
# not over.
GROWTH_ALLOWANCE = 0.05
FRESHNESS_VIEW = "plan.repository_list_freshness"
PLAN_VIEW = "plan.repository_refresh_plan"
CARRIED_TABLES = ("repository_user_permissions", "repository_group_permissions")
# A workspace's effective-list size in a sync ($1): as recorded when it was not read, else its rows.
_LAST_EFFECTIVE_PAIRS = (
    "SELECT coalesce((SELECT any_value(effective_pairs) FROM raw.workspaces WHERE sync_id = $1 AND "
    "workspace_slug = $2), (SELECT count(*) FROM raw.effective_repository_permissions WHERE sync_id = $1 AND "
    "workspace_slug = $2))"
)


@dataclass(frozen=True)
class RefreshPolicy:
    full: bool = False  # read every list (the first sync of a workspace always does)
    max_age_days: int = DEFAULT_REFRESH_MAX_AGE_DAYS  # N: no list in a snapshot is older than this
    # Past this, workspaces read their lists instead of the effective list (lists_instead_of_effective).
    target_hours: float = DEFAULT_SYNC_TARGET_HOURS
    # Change control (extraction/change_control.py) is read for about 1/N of the repositories a day.
    change_control_days: int = DEFAULT_CHANGE_CONTROL_DAYS

    def __post_init__(self) -> None:
        if self.change_control_days < 1:
            raise ValueError(
                f"the change-control period must be at least 1 day, not {self.change_control_days}"
            )
        if self.max_age_days < 1:
            raise ValueError(f"the refresh age must be at least 1 day, not {self.max_age_days}")
        if self.target_hours <= 0:
            raise ValueError(f"the sync's target hours must be positive, not {self.target_hours}")


@dataclass
class WorkspaceRefresh:
    """What one workspace's sync reads and carries. `due` maps a known repository to why it is read today."""

    slug: str
    mode: str  # full | incremental
    why: str = ""  # why a workspace is read in full
    previous_sync_id: str | None = None
    known: set[str] = field(default_factory=set)  # repositories with lists in the previous observation
    due: dict[str, str] = field(default_factory=dict)

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"

    def reason(self, repository_uuid: str) -> str | None:
        """Why a repository's lists are read in the first pass, or None: wait for the plan."""
        if not self.incremental:
            return "full"
        if repository_uuid not in self.known:
            return "new"
        return self.due.get(repository_uuid)


def refresh_summary(con: duckdb.DuckDBPyConnection, sync_id: str, refreshes: list[WorkspaceRefresh]) -> dict:
    """Per workspace: full or incremental (and why full), repositories whose lists were read per reason
    (`new`, `due`, `changed`, `full`) and repositories carried forward: the manifest's `refresh`."""
    rows = con.execute(
        """
        SELECT workspace_slug,
               CASE WHEN observed_sync_id = sync_id THEN split_part(read_reason, ':', 1) ELSE 'carried' END AS
               how,
               count(DISTINCT resource_id)
        FROM raw.fetch_log
        WHERE sync_id = ? AND resource_type = 'repository' AND coalesce(read_reason, '') <> 'bulk'
        GROUP BY ALL ORDER BY ALL
        """,
        [sync_id],
    ).fetchall()
    counts: dict[str, Counter] = {}
    for ws, how, n in rows:
        counts.setdefault(ws, Counter())[how] = n
    summary = {}
    for r in refreshes:
        seen = counts.get(r.slug, Counter())
        carried = seen.pop("carried", 0)
        summary[r.slug] = {
            "mode": r.mode,
            **({"why": r.why} if r.why else {}),
            "read": dict(seen),
            "carried": carried,
        }
    return summary


def describe_refresh(refresh: dict) -> str:
    """One workspace's entry of the manifest's `refresh` in words."""
    read = ", ".join(f"{n} {why}" for why, n in sorted(refresh.get("read", {}).items())) or "none"
    how = refresh["mode"] + (f" ({refresh['why']})" if refresh.get("why") else "")
    return f"{how}; repositories' permission lists read: {read}; carried forward: {refresh.get('carried', 0)}"


def _exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def previous_sync(con: duckdb.DuckDBPyConnection, workspace: str) -> str | None:
    """The latest complete sync that covered the workspace (its latest observation)."""
    row = con.execute(
        "SELECT sync_id FROM raw.syncs WHERE status = 'complete' AND list_contains(workspaces, ?) "
        "ORDER BY finished_at DESC LIMIT 1",
        [workspace],
    ).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class WorkspaceLoad:
    """One workspace's calls per day in each rate-limit bucket, estimated from its last observation."""

    slug: str
    effective_pages: int  # pages of 100 (user, repository) pairs
    lists: int  # every repository's lists: one each, two when the group grants do not come in bulk
    other: int  # members, projects and their lists, groups: read every day
    pages: int  # repository pages
    due: int  # the lists of the repositories due on an incremental day

    @property
    def repositories(self) -> int:
        return self.pages + self.due

    @property
    def lists_extra(self) -> int:
        """Calls the repositories bucket takes on when the workspace reads every list instead of the due
        ones."""
        return max(1, self.lists - self.due)


def _loads(
    con: duckdb.DuckDBPyConnection, workspaces: list[str], policy: RefreshPolicy
) -> list[WorkspaceLoad]:
    loads = []
    for slug in workspaces:
        previous = previous_sync(con, slug)
        if previous is None:
            continue  # its first sync reads everything, the effective list included
        pairs, repositories, projects, members, bulk = con.execute(
            f"""
            SELECT ({_LAST_EFFECTIVE_PAIRS}),
                   (SELECT count(*) FROM raw.repositories WHERE sync_id = $1 AND workspace_slug = $2),
                   (SELECT count(*) FROM raw.projects WHERE sync_id = $1 AND workspace_slug = $2),
                   (SELECT count(*) FROM raw.workspace_members WHERE sync_id = $1 AND workspace_slug = $2),
                   (SELECT coalesce(any_value(repository_group_lists), '') LIKE 'bulk%' FROM raw.workspaces
                    WHERE sync_id = $1 AND workspace_slug = $2)
            """,
            [previous, slug],
        ).fetchone()
        per_repository = 1 if bulk else 2
        loads.append(
            WorkspaceLoad(
                slug,
                -(-pairs // 100),
                repositories * per_repository,
                other=2 * projects + -(-projects // 100) + -(-members // 100) + 4,
                pages=-(-repositories // 100),
                due=-(-repositories * per_repository // policy.max_age_days),
            )
        )
    return loads


def last_effective_pairs(con: duckdb.DuckDBPyConnection, workspace: str) -> int | None:
    """The size of the workspace's effective list when it was last read, as its latest observation records
    it."""
    previous = previous_sync(con, workspace)
    if previous is None:
        return None
    return con.execute(_LAST_EFFECTIVE_PAIRS, [previous, workspace]).fetchone()[0]


def lists_instead_of_effective(
    con: duckdb.DuckDBPyConnection, workspaces: list[str], policy: RefreshPolicy, requests_per_hour: float
) -> dict[str, str]:
    """The workspaces whose incremental sync reads every repository's lists instead of Bitbucket's effective
    list today, with why; estimated from each workspace's last observation.

    - where that list costs more calls than the lists;
    - and, while the day would take longer than `policy.target_hours`, the workspaces whose effective list
    saves the most calls per list added, each only if that shortens the day. The effective lists and the lists
    are paced in different buckets, and the effective lists are read beside every workspace's repositories
    (extract.py, `_EffectiveLists`): moving a workspace's reading from the other bucket into the repositories
    bucket shortens the day while the other bucket is the busier one. Their reconciliation is lost for the
    day; every one of their lists is read instead, so their snapshot is exact.
    """
    if policy.full:
        return {}
    return choose_lists_instead(_loads(con, workspaces, policy), policy.target_hours, requests_per_hour)


def choose_lists_instead(
    loads: list[WorkspaceLoad], target_hours: float, requests_per_hour: float
) -> dict[str, str]:
    """`lists_instead_of_effective` over estimated loads."""
    chosen: dict[str, str] = {}
    for w in loads:
        if w.effective_pages > w.lists:
            chosen[w.slug] = (
                f"Bitbucket's effective list (about {w.effective_pages:,} pages last time) costs more "
                f"than every repository's lists ({w.lists:,} calls)"
            )

    def hours() -> float:
        # The effective lists run one after another on a thread of their own, beside the workspaces' own work,
        # which also runs one after another (its members and projects in the other bucket, then its
        # repositories): a day lasts about as long as the longer of the two.
        beside = sum(w.other + (0 if w.slug in chosen else w.effective_pages) for w in loads)
        own = sum(w.other + w.repositories + (w.lists_extra if w.slug in chosen else 0) for w in loads)
        return max(beside, own) / requests_per_hour

    # Best first: the effective list that saves the most calls per list read instead; one that would not
    # shorten the day (its lists would make the repositories bucket the longer one) is passed over.
    for w in sorted(
        (w for w in loads if w.slug not in chosen and w.effective_pages),
        key=lambda w: w.effective_pages / w.lists_extra,
        reverse=True,
    ):
        if (before := hours()) <= target_hours * (1 - GROWTH_ALLOWANCE):
            break
        chosen[w.slug] = ""
        if (after := hours()) >= before:
            del chosen[w.slug]
            continue
        chosen[w.slug] = (
            f"with every effective list the sync would take about {before:.1f} h at "
            f"{requests_per_hour:,.0f} calls/h per bucket, over the {target_hours:g} h "
            f"target less {GROWTH_ALLOWANCE:.0%} for growth; this workspace's lists (the repositories "
            f"bucket) make it {after:.1f} h"
        )
    return chosen


def plan_workspace(
    con: duckdb.DuckDBPyConnection, sync_id: str, workspace: str, policy: RefreshPolicy, effective_list: str
) -> WorkspaceRefresh:
    """Decide full or incremental for a workspace, and which known repositories are due today.
    `effective_list`: `read`, or why Bitbucket's effective list is not read today (then every list is read).
    """
    previous = previous_sync(con, workspace)
    if policy.full:
        return WorkspaceRefresh(workspace, "full", "asked for (--full)", previous)
    if previous is None:
        return WorkspaceRefresh(workspace, "full", "first sync of this workspace", previous)
    if effective_list != "read":
        return WorkspaceRefresh(workspace, "full", f"Bitbucket's effective list {effective_list}", previous)
    if not (_exists(con, FRESHNESS_VIEW) and _exists(con, PLAN_VIEW)):
        return WorkspaceRefresh(
            workspace, "full", "the warehouse has no refresh plan yet (dbt builds it)", previous
        )
    rows = con.execute(
        f"SELECT repository_uuid, due_reason FROM {FRESHNESS_VIEW} WHERE sync_id = ? AND workspace_slug = ?",
        [sync_id, workspace],
    ).fetchall()
    return WorkspaceRefresh(
        workspace,
        "incremental",
        previous_sync_id=previous,
        known={r[0] for r in rows},
        due={r[0]: r[1] for r in rows if r[1]},
    )


def changed_repositories(
    con: duckdb.DuckDBPyConnection, sync_id: str, workspace: str
) -> list[tuple[str, str, str]]:
    """(uuid, slug, reason) of the repositories the plan says to read that have no list read in this sync
    yet."""
    con.execute("SET memory_limit = '2GB'")  # the prediction joins the whole workspace's grants once
    try:
        return con.execute(
            f"SELECT repository_uuid, repository_slug, reason FROM {PLAN_VIEW} "
            "WHERE sync_id = ? AND workspace_slug = ? ORDER BY repository_slug",
            [sync_id, workspace],
        ).fetchall()
    finally:
        con.execute("SET memory_limit = '384MB'")


def carry_forward(con: duckdb.DuckDBPyConnection, sync_id: str, refresh: WorkspaceRefresh) -> int:
    """Copy the previous observation's lists of every repository of this sync not read today (per list), with
    the sync that read them, and their users into this sync's directory. Returns the repositories carried."""
    previous, ws = refresh.previous_sync_id, refresh.slug
    if previous is None:
        return 0
    args = [sync_id, previous, ws]
    # Lists this sync has not read, for repositories it lists (today's slug: a renamed repository keeps its
    # lists).
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE carried AS
        SELECT f.resource_id AS repository_uuid, f.list, r.repository_slug
        FROM raw.fetch_log f
        JOIN raw.repositories r ON r.sync_id = $1 AND r.workspace_slug = f.workspace_slug
             AND r.repository_uuid = f.resource_id
        WHERE f.sync_id = $2 AND f.workspace_slug = $3 AND f.resource_type = 'repository'
          AND NOT EXISTS (SELECT 1 FROM raw.fetch_log t WHERE t.sync_id = $1 AND t.resource_type =
          'repository'
                          AND t.resource_id = f.resource_id AND t.list = f.list)
    """,
        args,
    )
    for table, kind in zip(CARRIED_TABLES, ("users", "groups"), strict=True):
        con.execute(
            f"""
            INSERT INTO raw.{table} BY NAME
            SELECT p.* REPLACE ($1 AS sync_id, c.repository_slug AS repository_slug,
                              coalesce(p.observed_sync_id, p.sync_id) AS observed_sync_id)
            FROM raw.{table} p JOIN carried c ON c.repository_uuid = p.repository_uuid AND c.list = '{kind}'
            WHERE p.sync_id = $2 AND p.workspace_slug = $3
        """,
            args,
        )
    con.execute(
        """
        INSERT INTO raw.fetch_log BY NAME
        SELECT p.* REPLACE ($1 AS sync_id, coalesce(p.observed_sync_id, p.sync_id) AS observed_sync_id)
        FROM raw.fetch_log p JOIN carried c ON c.repository_uuid = p.resource_id AND c.list = p.list
        WHERE p.sync_id = $2 AND p.workspace_slug = $3 AND p.resource_type = 'repository'
    """,
        args,
    )
    # People who hold a carried grant belong in the directory, with what the sync that read it knew of them (a
    # sighting of source `carried`, ranked after today's: identities.py).
    con.execute(
        """
        INSERT INTO raw.user_sightings BY NAME
        SELECT $1 AS sync_id, u.user_uuid, 'carried' AS source, $3 AS workspace_slug, u.account_id,
               u.display_name, u.nickname, u.user_type, u.raw
        FROM raw.users u
        WHERE u.sync_id = $2
          AND u.user_uuid IN (SELECT user_uuid FROM raw.repository_user_permissions
                              WHERE sync_id = $1 AND workspace_slug = $3 AND observed_sync_id <> $1)
          AND NOT EXISTS (SELECT 1 FROM raw.user_sightings t
                          WHERE t.sync_id = $1 AND t.user_uuid = u.user_uuid AND t.source = 'carried'
                            AND t.workspace_slug = $3)
    """,
        args,
    )
    carried = con.execute("SELECT count(DISTINCT repository_uuid) FROM carried").fetchone()[0]
    con.execute("DROP TABLE carried")
    return carried
