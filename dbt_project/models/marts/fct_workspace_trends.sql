-- What was held at each sync in the history, per workspace (and, with `workspace_slug` null, over every
-- workspace): the dashboard's trends and its workspace filter read this, so both count the same way.
with held as (
    select s.sync_id, s.synced_at, h.*
    from {{ ref('stg_bitbucket__sync_manifests') }} as s
    inner join {{ ref('fct_grant_history') }} as h
        on h.valid_from <= s.synced_at and (h.valid_to is null or h.valid_to > s.synced_at)
)

select
    sync_id,
    any_value(synced_at) as synced_at,
    workspace_slug,
    count(distinct principal_id) filter (where principal_type = 'user') as users_with_access,
    count(distinct workspace_slug || '/' || resource_id) filter (where resource_type = 'group') as groups_with_members,
    count(distinct workspace_slug || '/' || resource_id) filter (where resource_type = 'repository') as repositories,
    count(distinct principal_id) filter (
        where principal_type = 'user' and permission in ('admin', 'owner')
    ) as owners_and_admins,
    count(*) as grant_paths
from held
group by grouping sets ((sync_id, workspace_slug), (sync_id))
