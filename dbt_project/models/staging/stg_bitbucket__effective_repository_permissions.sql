select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.repository_uuid,
    r.user_uuid,
    r.permission
from {{ source('bitbucket_raw', 'effective_repository_permissions') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
