select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.repository_uuid,
    r.repository_slug,
    r.group_slug,
    r.permission
from {{ source('bitbucket_raw', 'repository_group_permissions') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
