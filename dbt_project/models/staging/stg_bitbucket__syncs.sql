-- Complete syncs only: the one place that decides which snapshots exist downstream.
select
    sync_id,
    started_at,
    finished_at as synced_at,
    workspaces,
    entity_counts,
    row_number() over (order by finished_at desc) = 1 as is_latest
from {{ source('bitbucket_raw', 'syncs') }}
where status = 'complete'
