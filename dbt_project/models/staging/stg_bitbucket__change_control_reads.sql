-- One row per change-control list in each complete snapshot (extraction/change_control.py): read by that sync,
-- or carried forward from the sync that last read it.
select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.resource_type,
    r.resource_id,
    r.list,
    r.rows as list_rows,
    r.fetched_at as read_at,
    coalesce(r.observed_sync_id, r.sync_id) as observed_sync_id,
    coalesce(r.observed_sync_id, r.sync_id) <> r.sync_id as is_carried_forward,
    r.read_reason
from {{ source('bitbucket_raw', 'change_control_reads') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
