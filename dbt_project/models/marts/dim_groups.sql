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
where {{ latest_observation('g.sync_id', 'g.workspace_slug') }}
