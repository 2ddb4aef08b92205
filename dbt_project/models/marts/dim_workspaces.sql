-- Every workspace ever synced, as of its latest observation; synced_at says how fresh that is.
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
    -- Bitbucket omits `added_on` (and `last_accessed`) for the members of workspaces administered from
    -- admin.atlassian.com (the `workspace_membership` schema of the 2.0 spec says so).
    case when (select count(m.added_on) from {{ ref('stg_bitbucket__workspace_members') }} m
               where m.sync_id = w.sync_id and m.workspace_slug = w.workspace_slug) = 0
         then 'atlassian_admin' else 'bitbucket' end as user_management,
    w.group_source,
    w.effective_list,
    w.sync_id,
    w.synced_at,
    w.sync_id = (select sync_id from {{ ref('stg_bitbucket__syncs') }} where is_latest) as covered_by_latest_sync
from {{ ref('stg_bitbucket__workspaces') }} as w
where {{ latest_observation('w.sync_id', 'w.workspace_slug') }}
