select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.group_slug,
    r.user_uuid,
    r.account_id
from {{ source('bitbucket_raw', 'group_members') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
