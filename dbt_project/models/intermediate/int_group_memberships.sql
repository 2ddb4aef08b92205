-- Who is in which group, per sync (1.0 groups API; groups are per workspace).
select
    m.sync_id,
    m.workspace_slug,
    m.group_slug,
    g.group_name,
    m.user_uuid
from {{ ref('stg_bitbucket__group_members') }} as m
inner join {{ ref('stg_bitbucket__groups') }} as g using (sync_id, workspace_slug, group_slug)
