select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.group_slug,
    r.name as group_name,
    r.default_permission,
    r.auto_add,
    r.member_count
from {{ source('bitbucket_raw', 'groups') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
