select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.resource_type,
    r.resource_id,
    r.resource_key,
    r.key_id,
    r.label,
    r.added_on,
    r.last_used,
    r.added_by_uuid,
    r.added_by_account_id,
    r.added_by_name,
    coalesce(r.observed_sync_id, r.sync_id) as observed_sync_id
from {{ source('bitbucket_raw', 'deploy_keys') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
