-- One row per (user, resource) in the latest sync: the highest permission the user really holds,
-- and the grant paths that produce it. A lower grant never overrides a higher one.
with

user_paths as (
    select
        *,
        {{ permission_rank('permission') }} as permission_rank,
        grant_source
            || case when via_group_slug is not null then ' via group ' || via_group_slug else '' end
            || case when via_project_key is not null then ' via project ' || via_project_key else '' end
            || ': ' || permission as grant_path
    from {{ ref('fct_grants') }}
    where principal_type = 'user' and resource_type in ('workspace', 'project', 'repository')
),

ranked as (
    select
        *,
        max(permission_rank) over (partition by workspace_slug, resource_type, resource_id, principal_id) as top_rank
    from user_paths
),

-- A workspace role is a member's grant path on the workspace; people without one hold access from outside.
members as (
    select distinct workspace_slug, principal_id from user_paths where resource_type = 'workspace'
)

select
    sync_id,
    synced_at,
    workspace_slug,
    resource_type,
    resource_id,
    resource_key,
    any_value(resource_name) as resource_name,
    principal_id as user_uuid,
    any_value(user_account_id) as user_account_id,
    any_value(principal_name) as user_display_name,
    arg_max(permission, permission_rank) as permission,
    count(*) filter (where permission_rank = top_rank) as grant_path_count,
    list(grant_path order by grant_path) filter (where permission_rank = top_rank) as grant_paths,
    count(*) as all_grant_path_count,
    list(grant_path order by permission_rank desc, grant_path) as all_grant_paths,
    list(distinct grant_source order by grant_source) as grant_sources,
    any_value(m.principal_id is not null) as is_workspace_member
from ranked
left join members as m using (workspace_slug, principal_id)
group by sync_id, synced_at, workspace_slug, resource_type, resource_id, resource_key, principal_id
