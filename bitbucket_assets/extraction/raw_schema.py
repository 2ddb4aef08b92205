"""The raw snapshot tables (schema `raw`). Every row carries its `sync_id` and the object's raw JSON.

A sync's rows are visible downstream only once `raw.syncs.status = 'complete'` for it (dbt staging
filters on that), so a failed or killed sync never shows a partial snapshot.
"""

from __future__ import annotations

from functools import cache

WS = "sync_id VARCHAR NOT NULL, workspace_uuid VARCHAR NOT NULL, workspace_slug VARCHAR NOT NULL"

TABLES: dict[str, str] = {
    "workspaces": f"{WS}, name VARCHAR, is_private BOOLEAN, administrator BOOLEAN, created_on TIMESTAMPTZ, "
    "raw JSON, group_source VARCHAR, repository_group_lists VARCHAR, effective_list VARCHAR, "
    "effective_pairs INTEGER, change_control VARCHAR, two_step_source VARCHAR",
    # Everyone seen in a sync, one row per user, each field merged over the sync's sightings in a fixed order
    # of sources (extraction/identities.py). `account_id` and `nickname` are null for a "Former user", and
    # where no payload of the sync carried them; `user_type` is Bitbucket's `type` (`user`, `app_user`, ...).
    "users": "sync_id VARCHAR NOT NULL, user_uuid VARCHAR NOT NULL, account_id VARCHAR, display_name "
    "VARCHAR, nickname VARCHAR, raw JSON, user_type VARCHAR",
    # Every payload that showed a user, once per distinct (user, source, workspace, fields): what `users` is
    # merged from.
    # `source`: workspace_members, group_members, project_permissions, repository_permissions,
    # effective_permissions, carried (identities.SOURCES).
    "user_sightings": "sync_id VARCHAR NOT NULL, user_uuid VARCHAR NOT NULL, source VARCHAR NOT NULL, "
    "workspace_slug VARCHAR, account_id VARCHAR, display_name VARCHAR, nickname VARCHAR, user_type VARCHAR, "
    "raw JSON",
    "workspace_members": f"{WS}, user_uuid VARCHAR NOT NULL, account_id VARCHAR, permission VARCHAR, "
    "added_on TIMESTAMPTZ, last_accessed TIMESTAMPTZ, raw JSON, has_2fa_enabled BOOLEAN",
    "groups": f"{WS}, group_slug VARCHAR NOT NULL, name VARCHAR, default_permission VARCHAR, auto_add "
    "BOOLEAN, member_count INTEGER, raw JSON",
    "group_members": f"{WS}, group_slug VARCHAR NOT NULL, user_uuid VARCHAR NOT NULL, account_id VARCHAR, "
    "display_name VARCHAR, raw JSON",
    "projects": f"{WS}, project_uuid VARCHAR NOT NULL, project_key VARCHAR NOT NULL, name VARCHAR, "
    "is_private BOOLEAN, created_on TIMESTAMPTZ, updated_on TIMESTAMPTZ, raw JSON",
    "project_user_permissions": f"{WS}, project_uuid VARCHAR NOT NULL, project_key VARCHAR NOT NULL, "
    "user_uuid VARCHAR NOT NULL, account_id VARCHAR, permission VARCHAR NOT NULL, raw JSON",
    "project_group_permissions": f"{WS}, project_uuid VARCHAR NOT NULL, project_key VARCHAR NOT NULL, "
    "group_slug VARCHAR NOT NULL, group_name VARCHAR, permission VARCHAR NOT NULL, raw JSON",
    "repositories": f"{WS}, repository_uuid VARCHAR NOT NULL, repository_slug VARCHAR NOT NULL, full_name "
    "VARCHAR, name VARCHAR, project_uuid VARCHAR, project_key VARCHAR, is_private BOOLEAN, created_on "
    "TIMESTAMPTZ, updated_on TIMESTAMPTZ, raw JSON",
    # A repository's lists are read again when the refresh plan says so (extraction/refresh.py); otherwise the
    # rows of the sync that last read them are carried into this one, `observed_sync_id` naming that sync.
    "repository_user_permissions": f"{WS}, repository_uuid VARCHAR NOT NULL, repository_slug VARCHAR NOT "
    "NULL, user_uuid VARCHAR NOT NULL, account_id VARCHAR, permission VARCHAR NOT NULL, raw JSON, "
    "observed_sync_id VARCHAR",
    "repository_group_permissions": f"{WS}, repository_uuid VARCHAR NOT NULL, repository_slug VARCHAR NOT "
    "NULL, group_slug VARCHAR NOT NULL, group_name VARCHAR, permission VARCHAR NOT NULL, raw JSON, "
    "observed_sync_id VARCHAR",
    # Bitbucket's own effective permissions, for reconciliation with the dbt marts.
    "effective_repository_permissions": f"{WS}, repository_uuid VARCHAR NOT NULL, repository_name VARCHAR, "
    "user_uuid VARCHAR NOT NULL, permission VARCHAR NOT NULL, raw JSON",
    # Change control (extraction/change_control.py), read per repository on a rolling schedule and carried
    # forward like the permission lists: `observed_sync_id` names the sync that read them.
    # One row per branch restriction rule; `users` / `groups` of `push` and `restrict_merges` are the
    # exemptions (`branch_restriction_exemptions`).
    "branch_restrictions": f"{WS}, repository_uuid VARCHAR NOT NULL, repository_slug VARCHAR NOT NULL, "
    "restriction_id BIGINT NOT NULL, kind VARCHAR NOT NULL, branch_match_kind VARCHAR NOT NULL, pattern "
    "VARCHAR, branch_type VARCHAR, value INTEGER, raw JSON, observed_sync_id VARCHAR",
    # principal_type `user` (principal_id = {uuid}) or `group` (principal_id = slug).
    "branch_restriction_exemptions": f"{WS}, repository_uuid VARCHAR NOT NULL, restriction_id BIGINT NOT "
    "NULL, principal_type VARCHAR NOT NULL, principal_id VARCHAR NOT NULL, account_id VARCHAR, "
    "principal_name VARCHAR, observed_sync_id VARCHAR",
    # `effective-branching-model` and `override-settings`: production branch (null: production disabled).
    "branching_models": f"{WS}, repository_uuid VARCHAR NOT NULL, repository_slug VARCHAR NOT NULL, "
    "production_branch VARCHAR, production_use_mainbranch BOOLEAN, development_branch VARCHAR, "
    "branching_model_overridden BOOLEAN, raw JSON, override_raw JSON, observed_sync_id VARCHAR",
    # Repository keys (resource_type `repository`, `owner`) and project keys (`project`, `created_by`).
    "deploy_keys": f"{WS}, resource_type VARCHAR NOT NULL, resource_id VARCHAR NOT NULL, resource_key "
    "VARCHAR NOT NULL, key_id BIGINT NOT NULL, label VARCHAR, added_on TIMESTAMPTZ, last_used TIMESTAMPTZ, "
    "added_by_uuid VARCHAR, added_by_account_id VARCHAR, added_by_name VARCHAR, raw JSON, observed_sync_id "
    "VARCHAR",
    # One row per resource and change-control list read (or carried): `list` is `branch_restrictions`,
    # `branching_model`, `override_settings` or `deploy_keys`; what coverage and freshness are computed from.
    "change_control_reads": f"{WS}, resource_type VARCHAR NOT NULL, resource_id VARCHAR NOT NULL, list "
    "VARCHAR NOT NULL, rows INTEGER NOT NULL, fetched_at TIMESTAMPTZ NOT NULL, observed_sync_id VARCHAR, "
    "read_reason VARCHAR",
    # List entries skipped because they lack the identity the model needs (e.g. `user: null`), per endpoint
    # and page (counted within that fetch: a resumed stage counts from the page it resumed at): the snapshot
    # goes on without them, and the manifest, the sync summary and an asset check say so.
    "anomalies": "sync_id VARCHAR NOT NULL, workspace_slug VARCHAR NOT NULL, endpoint_family VARCHAR NOT "
    "NULL, endpoint VARCHAR NOT NULL, page INTEGER NOT NULL, reason VARCHAR NOT NULL, raw JSON",
    # One row per permission list in the snapshot: proves completeness (asset check). `fetched_at` is when it
    # was read, by `observed_sync_id` (this sync, or the earlier one whose list was carried forward), and
    # `read_reason` says why it was read then (`full`, `new`, `due: ...`, `changed: ...`, `bulk`).
    "fetch_log": f"{WS}, resource_type VARCHAR NOT NULL, resource_id VARCHAR NOT NULL, list VARCHAR NOT "
    "NULL, rows INTEGER NOT NULL, fetched_at TIMESTAMPTZ NOT NULL, observed_sync_id VARCHAR, read_reason "
    "VARCHAR",
}

# Columns added after a table was first released, so that older warehouses gain them (always nullable).
ADDED_COLUMNS = (
    ("users", "user_type VARCHAR"),
    # Where the workspace's group members were read: `bitbucket-1.0` or `atlassian-admin-api` (organization
    # groups).
    ("workspaces", "group_source VARCHAR"),
    # How its repositories' group grants were read: `bulk: the 1.0 group-privileges list`, or `per repository:
    # <why>`.
    ("workspaces", "repository_group_lists VARCHAR"),
    # Whether Bitbucket's effective list was read for reconciliation: `read`, or `not read: <why>`.
    ("workspaces", "effective_list VARCHAR"),
    # Pairs in its effective list when last read (carried while not read): what the next sync estimates from.
    ("workspaces", "effective_pairs INTEGER"),
    # Whether the workspace's change control was readable (`readable`, or `not readable: <why>`), and where
    # its members' two-step verification came from (`permissions`, `members`, or `not reported`).
    ("workspaces", "change_control VARCHAR"),
    ("workspaces", "two_step_source VARCHAR"),
    # True or false when Bitbucket says; null when it does not.
    ("workspace_members", "has_2fa_enabled BOOLEAN"),
    # Lists carried forward from the sync that read them (null: read by the row's own sync).
    ("repository_user_permissions", "observed_sync_id VARCHAR"),
    ("repository_group_permissions", "observed_sync_id VARCHAR"),
    ("fetch_log", "observed_sync_id VARCHAR"),
    ("fetch_log", "read_reason VARCHAR"),
)

SYNCS = """
CREATE TABLE IF NOT EXISTS raw.syncs (
    sync_id VARCHAR PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    -- running | complete | interrupted (resumable) | failed | suspect (held back: too much vanished) |
    -- abandoned (never published, rows deleted) | pruned (published, rows pruned by retention)
    status VARCHAR NOT NULL,
    api_url VARCHAR,
    credential_kind VARCHAR,
    options JSON,                       -- what a resumed sync must match: API root and workspace filter
    resumes INTEGER,                    -- how many times it was resumed from its checkpoints
    workspaces VARCHAR[],
    entity_counts JSON,
    api_calls JSON,
    retries INTEGER,
    rate_limited INTEGER,
    error VARCHAR,
    skipped_workspaces JSON,            -- workspaces seen but not covered: {slug: reason}
    anomalies JSON,                     -- list entries skipped, per endpoint family: {family: count}
    group_sources JSON,                 -- where each workspace's group members were read: {slug: source}
    repository_group_lists JSON,        -- how each workspace's repository group grants were read: {slug: how}
    refresh JSON,                       -- per workspace: full or incremental, lists read per reason, lists
    -- carried
    vanished JSON,                      -- {limit, entries}: per workspace and kind, what vanished since its
    -- last observation (extraction/vanished.py)
    vanished_accepted BOOLEAN           -- published although over the breaker's limit (--accept-vanished)
)
"""


CHECKPOINTS = """
CREATE TABLE IF NOT EXISTS raw.sync_checkpoints (
    sync_id VARCHAR NOT NULL,
    workspace_slug VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,             -- members | projects | repositories | effective | refresh
    next_url VARCHAR,                   -- the page to continue from
    done BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sync_id, workspace_slug, stage)
)
"""


def create_raw_schema(con) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(SYNCS)
    # Warehouses created before these columns gain them.
    for column in (
        "skipped_workspaces",
        "anomalies",
        "group_sources",
        "repository_group_lists",
        "refresh",
        "vanished",
    ):
        con.execute(f"ALTER TABLE raw.syncs ADD COLUMN IF NOT EXISTS {column} JSON")
    con.execute("ALTER TABLE raw.syncs ADD COLUMN IF NOT EXISTS vanished_accepted BOOLEAN")
    con.execute(CHECKPOINTS)
    for name, columns in TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS raw.{name} ({columns})")
    for table, column in ADDED_COLUMNS:  # warehouses created before these columns; rows are inserted by name
        con.execute(f"ALTER TABLE raw.{table} ADD COLUMN IF NOT EXISTS {column}")


@cache
def column_names(table: str) -> tuple[str, ...]:
    """The table's columns in order; cached, as the writer asks for every row it buffers."""
    return tuple(part.strip().split()[0] for part in TABLES[table].split(","))
