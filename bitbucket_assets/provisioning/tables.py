"""The provisioning tables (schema `provisioning`) in the warehouse.

`access_requests` is the input people (or the access-review import) write; the pipeline maintains its
`status`. `provisioning_log` has one row per attempt, hash-chained, its head signed into `log_heads`
(`audit_log.py`). `provisioning_intents` records a call before it is made, so a run killed at any point can
tell, by reading live membership, whether the call took effect.
"""

from __future__ import annotations

STATUSES = ("pending", "applied", "no_change", "rejected", "failed", "expired")
ACTIONS = ("add", "remove")

DDL = [
    "CREATE SCHEMA IF NOT EXISTS provisioning",
    """
    CREATE TABLE IF NOT EXISTS provisioning.access_requests (
        request_id VARCHAR PRIMARY KEY,
        workspace_slug VARCHAR NOT NULL,
        group_slug VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,            -- {uuid} or Atlassian account id
        action VARCHAR NOT NULL,             -- add | remove
        requested_by VARCHAR NOT NULL,
        approved_by VARCHAR,
        approved_at TIMESTAMPTZ,
        expires_at TIMESTAMPTZ,              -- just-in-time access: removed by itself at this time
        reason VARCHAR,
        approval_ref VARCHAR,                -- the approval's reference elsewhere, e.g. a ticket id
        allow_protected BOOLEAN DEFAULT false, -- explicitly allowed to touch a protected group
        status VARCHAR NOT NULL DEFAULT 'pending',
        status_reason VARCHAR,
        created_at TIMESTAMPTZ DEFAULT current_timestamp,
        updated_at TIMESTAMPTZ DEFAULT current_timestamp
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS provisioning.provisioning_log (
        log_id VARCHAR PRIMARY KEY,
        request_id VARCHAR NOT NULL,
        workspace_slug VARCHAR,
        group_slug VARCHAR,
        user_uuid VARCHAR,
        action VARCHAR NOT NULL,             -- add | remove | expire
        outcome VARCHAR NOT NULL,            -- planned | applied | no_change | rejected | failed | expired
        http_status INTEGER,
        error VARCHAR,
        requested_by VARCHAR,
        approved_by VARCHAR,
        attempted_at TIMESTAMPTZ NOT NULL,
        run_id VARCHAR,
        dry_run BOOLEAN NOT NULL DEFAULT false,
        approval_ref VARCHAR,
        seq BIGINT,                          -- place in the hash chain (audit_log.py)
        prev_hash VARCHAR,
        row_hash VARCHAR
    )
    """,
    """
    -- Access-review campaigns (reporting/review.py): each export, and the evidence of every row it held, so
    -- that an import accepts only rows that were exported, unchanged.
    CREATE TABLE IF NOT EXISTS provisioning.review_campaigns (
        campaign_id VARCHAR PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL,
        as_of TIMESTAMPTZ NOT NULL,
        workspace_slug VARCHAR,              -- null: every workspace
        item_count INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS provisioning.review_items (
        campaign_id VARCHAR NOT NULL,
        review_item VARCHAR NOT NULL,
        workspace_slug VARCHAR,
        resource_type VARCHAR,
        resource_key VARCHAR,
        resource_name VARCHAR,
        user_uuid VARCHAR,
        user_account_id VARCHAR,
        user_display_name VARCHAR,
        permission VARCHAR,
        grant_paths VARCHAR,
        groups VARCHAR,
        fingerprint VARCHAR NOT NULL,
        PRIMARY KEY (campaign_id, review_item)
    )
    """,
    # Warehouses created before the hash chain and approval references gain the columns (rows written
    # before keep them empty, and verify as such).
    "ALTER TABLE provisioning.access_requests ADD COLUMN IF NOT EXISTS approval_ref VARCHAR",
    "ALTER TABLE provisioning.provisioning_log ADD COLUMN IF NOT EXISTS approval_ref VARCHAR",
    "ALTER TABLE provisioning.provisioning_log ADD COLUMN IF NOT EXISTS seq BIGINT",
    "ALTER TABLE provisioning.provisioning_log ADD COLUMN IF NOT EXISTS prev_hash VARCHAR",
    "ALTER TABLE provisioning.provisioning_log ADD COLUMN IF NOT EXISTS row_hash VARCHAR",
    """
    -- Project-level branch restrictions, as an administrator saw them in each project's settings: Bitbucket
    -- enforces them on every repository of the project but serves them through no API, so a repository's
    -- rules are fully readable only where its project was checked and has none (docs/design.md, "Change
    -- control").
    CREATE TABLE IF NOT EXISTS provisioning.project_branch_rules (
        workspace_slug VARCHAR NOT NULL,
        project_key VARCHAR NOT NULL,
        has_project_rules BOOLEAN NOT NULL,
        checked_by VARCHAR,
        checked_on DATE,
        PRIMARY KEY (workspace_slug, project_key)
    )
    """,
    """
    -- People who left (from HR or IT offboarding): the risk report lists any access they still hold.
    -- Bitbucket's membership payloads do not say an account was deactivated, so this is an input.
    CREATE TABLE IF NOT EXISTS provisioning.leavers (
        user_id VARCHAR PRIMARY KEY,         -- {uuid} or Atlassian account id
        left_on DATE NOT NULL,
        source VARCHAR
    )
    """,
    # What a review `revoke` can take away, as the review population said at export (marts.review_population).
    "ALTER TABLE provisioning.review_items ADD COLUMN IF NOT EXISTS removable_via_groups VARCHAR[]",
    "ALTER TABLE provisioning.review_items ADD COLUMN IF NOT EXISTS paths_outside_groups VARCHAR[]",
    # Which API made (or would make) the change: `bitbucket-1.0` or `atlassian-admin-api`
    # (provisioning/backends.py).
    "ALTER TABLE provisioning.provisioning_log ADD COLUMN IF NOT EXISTS backend VARCHAR",
    """
    -- The documented view of provisioning actions that reports read: every attempt with its request's
    -- approval.
    CREATE OR REPLACE VIEW provisioning.actions AS
    SELECT l.attempted_at, l.request_id, l.workspace_slug, l.group_slug, l.user_uuid, l.action, l.outcome,
           l.http_status, l.error, l.requested_by, l.approved_by, l.approval_ref, r.approved_at, r.expires_at,
           l.run_id, l.dry_run, l.backend
    FROM provisioning.provisioning_log l
    LEFT JOIN provisioning.access_requests r USING (request_id)
    """,
    # Proof of approval: the approver's signature over the request's text (signed_requests.py), or, for a
    # request made by a review import, the SHA-256 of the signed review file it came from (review_files).
    "ALTER TABLE provisioning.access_requests ADD COLUMN IF NOT EXISTS approval_signature VARCHAR",
    "ALTER TABLE provisioning.access_requests ADD COLUMN IF NOT EXISTS review_file_sha256 VARCHAR",
    # A campaign takes decisions until its due time (set at export).
    "ALTER TABLE provisioning.review_campaigns ADD COLUMN IF NOT EXISTS due_at TIMESTAMPTZ",
    # What the campaign reviews: `access` (who holds what) or `change-control` (who can change production
    # alone); null in campaigns exported before kinds existed, which were access reviews.
    "ALTER TABLE provisioning.review_campaigns ADD COLUMN IF NOT EXISTS campaign_kind VARCHAR",
    """
    -- Every review file imported: its bytes, and the reviewer's detached signature over them, so that each
    -- decision (and each request a revoke made) can be checked again against the reviewer's key.
    CREATE TABLE IF NOT EXISTS provisioning.review_files (
        file_sha256 VARCHAR PRIMARY KEY,
        file_name VARCHAR NOT NULL,
        content BLOB NOT NULL,
        signature VARCHAR,                   -- null: imported without an approver policy (unsigned)
        reviewer VARCHAR NOT NULL,           -- the signer's principal (unsigned: the reviewer cells)
        key_fingerprint VARCHAR,
        imported_at TIMESTAMPTZ NOT NULL
    )
    """,
    """
    -- Attestations: every decision of a review, keep as well as revoke, by whom, when and from which file.
    CREATE TABLE IF NOT EXISTS provisioning.review_decisions (
        campaign_id VARCHAR NOT NULL,
        review_item VARCHAR NOT NULL,
        decision VARCHAR NOT NULL,           -- keep | revoke
        comment VARCHAR,
        reviewer VARCHAR NOT NULL,
        key_fingerprint VARCHAR,             -- the reviewer's key; null: unsigned (no approver policy)
        decided_at TIMESTAMPTZ NOT NULL,     -- when the file was imported
        file_sha256 VARCHAR NOT NULL,
        file_line INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, review_item)
    )
    """,
    """
    -- The attestations reports read: each decision with the access it was about.
    CREATE OR REPLACE VIEW provisioning.attestations AS
    SELECT d.decided_at, d.campaign_id, d.review_item, i.workspace_slug, i.resource_type, i.resource_key,
           i.user_uuid, i.user_account_id, i.user_display_name, i.permission, d.decision, d.comment,
           d.reviewer, d.key_fingerprint, d.file_sha256, d.file_line
    FROM provisioning.review_decisions d
    JOIN provisioning.review_items i USING (campaign_id, review_item)
    """,
    """
    -- Each campaign's completion: items decided of items exported, in all (reviewer null) and by reviewer.
    CREATE OR REPLACE VIEW provisioning.review_completion AS
    WITH decided AS (
        SELECT campaign_id, reviewer, count(*) AS items_decided,
               count(*) FILTER (WHERE decision = 'keep') AS kept,
               count(*) FILTER (WHERE decision = 'revoke') AS revoked
        FROM provisioning.review_decisions
        GROUP BY GROUPING SETS ((campaign_id), (campaign_id, reviewer))
    )
    SELECT c.campaign_id, c.workspace_slug, c.as_of, c.created_at, c.due_at, c.item_count AS items_exported,
           d.reviewer, coalesce(d.items_decided, 0) AS items_decided, coalesce(d.kept, 0) AS kept,
           coalesce(d.revoked, 0) AS revoked, coalesce(c.campaign_kind, 'access') AS campaign_kind
    FROM provisioning.review_campaigns c
    LEFT JOIN decided d USING (campaign_id)
    """,
    """
    -- The log's head signed with the service's key after each row (audit_log.py): seq and row_hash of that
    -- row, when, and the OpenSSH signature over them.
    CREATE TABLE IF NOT EXISTS provisioning.log_heads (
        seq BIGINT PRIMARY KEY,
        row_hash VARCHAR NOT NULL,
        signed_at TIMESTAMPTZ NOT NULL,
        signature VARCHAR NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS provisioning.provisioning_intents (
        request_id VARCHAR NOT NULL,
        action VARCHAR NOT NULL,             -- add | remove (an expiry is a remove)
        workspace_slug VARCHAR NOT NULL,
        group_slug VARCHAR NOT NULL,
        user_uuid VARCHAR NOT NULL,
        run_id VARCHAR,
        recorded_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (request_id, action)
    )
    """,
]


def create_provisioning_tables(con) -> None:
    for statement in DDL:
        con.execute(statement)
