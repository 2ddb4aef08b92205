select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.repository_uuid,
    r.repository_slug,
    r.user_uuid,
    r.account_id,
    r.permission
from {{ source('bitbucket_raw', 'repository_user_permissions') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
