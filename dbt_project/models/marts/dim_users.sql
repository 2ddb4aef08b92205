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
        max(last_accessed) as last_accessed,
        -- Two-step verification is the account's: false where any workspace says false, true where one says
        -- true and none false, null (unknown) where none says (admin.atlassian.com answers null).
        bool_and(has_2fa_enabled) as has_2fa_enabled
    from {{ ref('stg_bitbucket__workspace_members') }}
    where {{ latest_observation() }}
    group by user_uuid
),

-- One identity per user over every sync holding a workspace's latest observation: each field from the newest
-- sync that carries it (each sync's row is already merged over its own sightings: extraction/identities.py), so
-- that a user a newer sync saw only in lists without account ids keeps the id an older observation had.
latest_user as (
    select
        user_uuid,
        arg_max(account_id, synced_at) filter (where account_id is not null) as account_id,
        arg_max(display_name, synced_at) filter (where display_name is not null) as display_name,
        arg_max(nickname, synced_at) filter (where nickname is not null) as nickname,
        arg_max(user_type, synced_at) filter (where user_type is not null) as user_type,
        arg_max(sync_id, synced_at) as sync_id,
        max(synced_at) as synced_at
    from {{ ref('stg_bitbucket__users') }}
    where {{ latest_observation_syncs() }}
    group by user_uuid
)

select
    u.user_uuid,
    u.account_id,
    u.display_name,
    u.display_name as user_display_name,
    u.nickname,
    u.user_type,
    r.user_uuid is not null as is_workspace_member,
    {{ is_deleted_account('u') }} as is_former_user,
    s.seen_in,
    s.workspaces,
    coalesce(r.workspace_roles, []::varchar[]) as workspace_roles,
    coalesce(r.is_workspace_owner, false) as is_workspace_owner,
    r.last_accessed,
    r.has_2fa_enabled,
    f.first_seen_at,
    u.sync_id,
    u.synced_at
from latest_user as u
inner join sightings as s on u.user_uuid = s.user_uuid
left join roles as r on u.user_uuid = r.user_uuid
left join first_seen as f on u.user_uuid = f.user_uuid
