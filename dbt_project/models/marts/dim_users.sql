-- Everyone seen with membership or access in a workspace's latest observation: members, and people who hold
-- access without membership (outside collaborators with direct grants, app users, "Former user" accounts).
with sightings as (
    select
        user_uuid,
        list(distinct seen_in order by seen_in) as seen_in,
        list(distinct workspace_slug order by workspace_slug) as workspaces
    from {{ ref('int_user_sightings') }}
    group by user_uuid
),

first_seen as (
    select user_uuid, min(synced_at) as first_seen_at from {{ ref('stg_bitbucket__users') }} group by user_uuid
),

roles as (
    select
        user_uuid,
        list(workspace_slug || ':' || workspace_role order by workspace_slug) as workspace_roles,
        bool_or(workspace_role = 'owner') as is_workspace_owner,
        max(last_accessed) as last_accessed
    from {{ ref('stg_bitbucket__workspace_members') }}
    where {{ latest_observation() }}
    group by user_uuid
),

latest_user as (
    select *
    from {{ ref('stg_bitbucket__users') }}
    where {{ latest_observation_syncs() }}
    qualify row_number() over (partition by user_uuid order by synced_at desc) = 1
)

select
    u.user_uuid,
    u.account_id,
    u.display_name,
    u.nickname,
    u.user_type,
    r.user_uuid is not null as is_workspace_member,
    -- A deleted Atlassian account: Bitbucket keeps its uuid and shows it as "Former user", with no account id.
    u.account_id is null and coalesce(u.user_type, 'user') = 'user' as is_former_user,
    s.seen_in,
    s.workspaces,
    coalesce(r.workspace_roles, []::varchar[]) as workspace_roles,
    coalesce(r.is_workspace_owner, false) as is_workspace_owner,
    r.last_accessed,
    f.first_seen_at,
    u.sync_id,
    u.synced_at
from latest_user as u
inner join sightings as s on u.user_uuid = s.user_uuid
left join roles as r on u.user_uuid = r.user_uuid
left join first_seen as f on u.user_uuid = f.user_uuid
