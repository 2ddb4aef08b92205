select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.user_uuid,
    r.account_id,
    r.permission as workspace_role,
    r.added_on,
    r.last_accessed,
    r.has_2fa_enabled
from {{ source('bitbucket_raw', 'workspace_members') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
