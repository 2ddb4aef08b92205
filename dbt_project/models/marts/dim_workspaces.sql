select
    w.workspace_uuid,
    w.workspace_slug,
    w.workspace_name,
    w.is_private,
    w.synced_as_administrator,
    w.created_on,
    (select count(*) from {{ ref('stg_bitbucket__workspace_members') }} m
     where m.sync_id = w.sync_id and m.workspace_slug = w.workspace_slug) as member_count,
    (select count(*) from {{ ref('stg_bitbucket__workspace_members') }} m
     where m.sync_id = w.sync_id and m.workspace_slug = w.workspace_slug and m.workspace_role = 'owner') as owner_count,
    w.sync_id,
    w.synced_at
from {{ ref('stg_bitbucket__workspaces') }} as w
inner join {{ ref('stg_bitbucket__syncs') }} as s on w.sync_id = s.sync_id and s.is_latest
