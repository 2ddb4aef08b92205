-- Every user holding a workspace membership in a workspace's latest observation, with their roles and when
-- they were first seen.
with first_seen as (
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
    r.workspace_roles,
    coalesce(r.is_workspace_owner, false) as is_workspace_owner,
    r.last_accessed,
    f.first_seen_at,
    u.sync_id,
    u.synced_at
from latest_user as u
inner join roles as r on u.user_uuid = r.user_uuid
left join first_seen as f on u.user_uuid = f.user_uuid
