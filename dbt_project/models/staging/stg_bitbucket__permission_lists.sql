-- One row per permission list in each complete snapshot: read by that sync, or carried forward from the sync
-- that last read it (extraction/refresh.py). A list's age is how stale its grant paths can be.
select
    s.synced_at,
    f.sync_id,
    f.workspace_uuid,
    f.workspace_slug,
    f.resource_type,
    f.resource_id,
    f.list,
    f.rows as list_rows,
    f.fetched_at as read_at,
    coalesce(f.observed_sync_id, f.sync_id) as observed_sync_id,
    coalesce(f.observed_sync_id, f.sync_id) <> f.sync_id as is_carried_forward,
    f.read_reason
from {{ source('bitbucket_raw', 'fetch_log') }} as f
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
