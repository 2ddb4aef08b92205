-- Every repository and project access key in each workspace's latest observation: who added it, whether they
-- are still a member, and how long since it was last used. (Bitbucket's access keys are read-only; an audit
-- still asks which exist, who added them and whether they are used.)
with members as (
    select sync_id, workspace_slug, user_uuid from {{ ref('stg_bitbucket__workspace_members') }}
    where {{ latest_observation() }}
)

select
    k.sync_id,
    k.synced_at,
    k.workspace_slug,
    k.resource_type,
    k.resource_id,
    k.resource_key,
    k.key_id,
    k.label,
    k.added_on,
    k.last_used,
    k.added_by_uuid,
    k.added_by_account_id,
    k.added_by_name,
    k.added_by_uuid is not null and m.user_uuid is null as added_by_non_member,
    date_diff('day', coalesce(k.last_used, k.added_on), k.synced_at) as days_unused,
    k.observed_sync_id
from {{ ref('stg_bitbucket__deploy_keys') }} as k
left join members as m on m.sync_id = k.sync_id and m.workspace_slug = k.workspace_slug
    and m.user_uuid = k.added_by_uuid
where {{ latest_observation('k.sync_id', 'k.workspace_slug') }}
