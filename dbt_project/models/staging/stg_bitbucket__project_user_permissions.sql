select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.project_uuid,
    r.project_key,
    r.user_uuid,
    r.account_id,
    r.permission
from {{ source('bitbucket_raw', 'project_user_permissions') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
