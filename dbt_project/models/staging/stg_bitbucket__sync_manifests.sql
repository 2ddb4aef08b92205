-- The manifest of every sync whose snapshot reached the history: complete ones, and those whose raw rows
-- retention later pruned (their manifest and their history rows stay).
select
    sync_id,
    finished_at as synced_at,
    status,
    workspaces,
    entity_counts,
    api_calls,
    skipped_workspaces,
    anomalies,
    group_sources,
    repository_group_lists,
    refresh
from {{ source('bitbucket_raw', 'syncs') }}
where status in ('complete', 'pruned')
