select
    g.workspace_slug,
    g.group_slug,
    g.group_name,
    g.default_permission,
    g.auto_add,
    g.member_count,
    g.sync_id,
    g.synced_at
from {{ ref('stg_bitbucket__groups') }} as g
inner join {{ ref('stg_bitbucket__syncs') }} as s on g.sync_id = s.sync_id and s.is_latest
